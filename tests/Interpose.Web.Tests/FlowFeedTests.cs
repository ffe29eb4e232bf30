using Interpose.Core.Flows;
using Interpose.Store;

namespace Interpose.Web.Tests;

/// <summary>The live feed's queues, without sockets: what a tail-following browser is sent and what it is not.</summary>
public sealed class FlowFeedTests
{
    [Fact]
    public void A_tail_following_subscriber_gets_the_newest_rows_and_the_count_of_the_others()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true);
        const int Extra = 57;
        var flows = Enumerable.Range(0, FlowFeed.TailRows + Extra).Select(i => Flow(i)).ToList();

        Publish(feed, flows);

        var rows = new List<FlowSummary>();
        Assert.Equal(Extra, subscription.TakeTail(rows));
        Assert.Equal(flows.Skip(Extra).Select(f => f.Id), rows.Select(r => r.Id)); // the newest, oldest first
        Assert.False(subscription.Reader.TryRead(out _)); // new rows never go to the unbounded-rate queue

        // Nothing new since: an empty push.
        rows.Clear();
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Empty(rows);
    }

    [Fact]
    public void Changed_rows_reach_a_tail_following_subscriber_whatever_the_ring_holds()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true);
        var marked = Flow(0) with { Marker = "marked" };

        Publish(feed, Enumerable.Range(1, FlowFeed.TailRows * 2).Select(i => Flow(i)));
        feed.Stored([new SequencedFlow(marked, 1, Replaced: true)]);

        Assert.True(subscription.Reader.TryRead(out var item));
        Assert.Equal(FeedItemKind.Row, item.Kind);
        Assert.Equal(marked.Id, item.Row!.Id);
        Assert.Equal("marked", item.Row.Marker);
        var rows = new List<FlowSummary>();
        Assert.Equal(FlowFeed.TailRows, subscription.TakeTail(rows));
        Assert.DoesNotContain(rows, r => r.Id == marked.Id);
    }

    [Fact]
    public void A_subscriber_that_does_not_follow_the_tail_gets_every_row()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null);
        var flows = Enumerable.Range(0, FlowFeed.TailRows + 1).Select(i => Flow(i)).ToList();

        Publish(feed, flows);

        var ids = new List<Guid>();
        while (subscription.Reader.TryRead(out var item))
        {
            ids.Add(item.Row!.Id);
        }

        Assert.Equal(flows.Select(f => f.Id), ids);
        Assert.Equal(0, subscription.TakeTail([]));
    }

    [Fact]
    public async Task A_tail_following_subscriber_wakes_for_a_row_and_for_a_signal()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var waiting = subscription.WaitAsync(timeout.Token).AsTask();
        Assert.False(waiting.IsCompleted);
        Publish(feed, [Flow(1)]);
        Assert.True(await waiting);
        var rows = new List<FlowSummary>();
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Single(rows);

        waiting = subscription.WaitAsync(timeout.Token).AsTask();
        Assert.False(waiting.IsCompleted);
        feed.InterceptChanged();
        Assert.True(await waiting);
        Assert.True(subscription.Reader.TryRead(out var item));
        Assert.Equal(FeedItemKind.Intercept, item.Kind);
    }

    [Fact]
    public async Task Each_push_counts_exactly_the_rows_skipped_before_the_ones_it_sends_while_flows_keep_coming()
    {
        // The browser places a push's count of skipped rows, then its rows: read back that way, every row must land at
        // its own position, however a push interleaves with the publishing (a count taken apart from the ring's rows
        // put a row pushed out in between into the next push's count, after rows that came later).
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true);
        const int Total = 200_000;
        var flows = Enumerable.Range(0, Total).Select(i => Flow(i)).ToArray();
        var position = new Dictionary<Guid, int>(Total);
        for (var i = 0; i < Total; i++)
        {
            position[flows[i].Id] = i;
        }

        var publishing = Task.Run(() =>
        {
            for (var i = 0; i < flows.Length; i++)
            {
                feed.Stored([new SequencedFlow(flows[i], i + 1, Replaced: false)]);
            }
        });

        long next = 0;
        var rows = new List<FlowSummary>();
        var pushes = 0;
        while (next < Total)
        {
            rows.Clear();
            var published = publishing.IsCompleted; // before taking: all rows are in the ring or counted by then
            next += subscription.TakeTail(rows);
            foreach (var row in rows)
            {
                Assert.Equal(next, position[row.Id]);
                next++;
            }

            pushes++;
            if (published && rows.Count == 0 && next < Total)
            {
                Assert.Fail($"pushes account for {next} of {Total} rows and nothing is left to take");
            }
        }

        await publishing;
        Assert.Equal(Total, next);
        Assert.True(pushes > 1);
    }

    [Fact]
    public void A_subscription_lined_up_with_its_list_is_told_only_what_the_list_does_not_have()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true, lined: true);
        var flows = Enumerable.Range(0, 6).Select(i => Flow(i)).ToList();

        // Told between the subscription and the list's read: held. Flows 1-2 and the eviction by 2 are in the list
        // (sequence 2); flow 3 and the eviction by 3 came after it.
        feed.Stored([new SequencedFlow(flows[1], 1, false), new SequencedFlow(flows[2], 2, false)]);
        feed.Evicted([flows[0]], [2]);
        feed.Stored([new SequencedFlow(flows[3], 3, false)]);
        feed.Evicted([flows[1]], [3]);
        var rows = new List<FlowSummary>();
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Empty(rows);
        Assert.False(subscription.Reader.TryRead(out _));

        subscription.Begin(2);
        Assert.True(subscription.Reader.TryRead(out var item));
        Assert.Equal((FeedItemKind.Evicted, 1L), (item.Kind, item.Count));
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Equal([flows[3].Id], rows.Select(r => r.Id));

        // After it, the same rule: a flow or an eviction the list reflects (an announcement that came late) is dropped.
        rows.Clear();
        feed.Stored([new SequencedFlow(flows[2], 2, false), new SequencedFlow(flows[4], 4, false)]);
        feed.Evicted([flows[2], flows[3]], [2, 5]);
        Assert.True(subscription.Reader.TryRead(out item));
        Assert.Equal((FeedItemKind.Evicted, 1L), (item.Kind, item.Count));
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Equal([flows[4].Id], rows.Select(r => r.Id));

        // A changed row goes through whatever its number: the browser replaces its row, if it has it.
        feed.Stored([new SequencedFlow(flows[1] with { Marker = "m" }, 1, Replaced: true)]);
        Assert.True(subscription.Reader.TryRead(out item));
        Assert.Equal((FeedItemKind.Row, "m"), (item.Kind, item.Row!.Marker));
    }

    [Fact]
    public async Task Lined_up_while_flows_keep_coming_a_subscription_gets_each_flow_past_its_list_once_and_in_order()
    {
        // The list is read while the store keeps announcing: whatever the interleaving, the subscription must pass on
        // exactly the flows numbered past the list's sequence, each once, in order.
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, lined: true);
        const int Total = 20_000;
        var flows = Enumerable.Range(0, Total).Select(i => Flow(i)).ToArray();
        var published = 0;
        var halfway = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var publishing = Task.Run(() =>
        {
            for (var i = 0; i < Total; i++)
            {
                feed.Stored([new SequencedFlow(flows[i], i + 1, false)]);
                Volatile.Write(ref published, i + 1);
                if (i == Total / 2)
                {
                    halfway.TrySetResult();
                }
            }
        });

        await halfway.Task;
        var sequence = Volatile.Read(ref published); // the list's: every flow up to it was stored before
        subscription.Begin(sequence);
        await publishing;

        var ids = new List<Guid>();
        while (subscription.Reader.TryRead(out var item))
        {
            ids.Add(item.Row!.Id);
        }

        Assert.Equal(flows.Skip(sequence).Select(f => f.Id), ids);
        Assert.False(subscription.TakeOverflow());
    }

    [Fact]
    public void Without_a_sequence_what_was_told_before_the_list_was_read_is_dropped_and_the_rest_passes()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true, lined: true);
        feed.Stored([new SequencedFlow(Flow(1), 7, false)]);
        feed.Evicted([Flow(0)], [7]);

        subscription.Begin(null);
        feed.Stored([new SequencedFlow(Flow(2), 3, false)]);

        var rows = new List<FlowSummary>();
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Equal("/item/2", Assert.Single(rows).Url is { } url ? new Uri(url).AbsolutePath : null);
        Assert.False(subscription.Reader.TryRead(out _));
    }

    [Fact]
    public async Task A_removal_tells_each_browser_how_many_of_the_removed_flows_its_filter_matches()
    {
        var feed = new FlowFeed();
        using var all = feed.Subscribe(null, null, tail: true);
        using var some = feed.Subscribe(Core.Filters.FlowFilter.Parse("~u /item/1$"), null, tail: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var removed = new[] { Flow(1), Flow(2), Flow(3) };

        feed.Removed(removed);

        Assert.True(all.Reader.TryRead(out var item));
        Assert.Equal((FeedItemKind.Removed, 3L), (item.Kind, item.Count));
        Assert.Equal(removed.Select(f => f.Id), item.Ids!);
        Assert.True(await some.WaitAsync(timeout.Token)); // a browser with a filter counts in its push loop
        Assert.True(some.Reader.TryRead(out item));
        Assert.Equal((FeedItemKind.Removed, 1L), (item.Kind, item.Count));

        feed.Removed(null);
        Assert.True(await some.WaitAsync(timeout.Token));
        Assert.True(some.Reader.TryRead(out item));
        Assert.Equal((FeedItemKind.Removed, null), (item.Kind, item.Ids));
    }

    [Fact]
    public async Task The_recorders_call_never_evaluates_a_browsers_filter_its_push_loop_does()
    {
        // The store's observer runs on the recorder's one task: a filter whose regular expression takes its whole timeout
        // on every flow there filled the recorder's queue and dropped flows from the recording.
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(Core.Filters.FlowFilter.Parse("~u /item/1$"), Core.Filters.FlowFilter.Parse("~m GET"), tail: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var flows = new[] { Flow(1), Flow(2) };
        var read = flows.Select(f => new ReadCounting(f.AsFilterable())).ToArray();

        subscription.Offer(flows[0], read[0], isNew: true, sequence: 1);
        subscription.Offer(flows[1], read[1], isNew: true, sequence: 2);
        feed.Evicted([Flow(0)], [2]);

        Assert.All(read, r => Assert.Equal(0, r.Reads));
        var rows = new List<FlowSummary>();
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Empty(rows);
        Assert.False(subscription.Reader.TryRead(out _));

        Assert.True(await subscription.WaitAsync(timeout.Token)); // the push loop's wait filters what came
        Assert.All(read, r => Assert.NotEqual(0, r.Reads));
        Assert.Equal(0, subscription.TakeTail(rows));
        var row = Assert.Single(rows);
        Assert.Equal((flows[0].Id, true), (row.Id, row.Highlight));
        Assert.False(subscription.Reader.TryRead(out _)); // /item/0, evicted, does not match
    }

    [Fact]
    public async Task The_stores_call_neither_decodes_nor_filters_the_evicted_flows_a_browsers_filter_counts()
    {
        // The in-memory store decodes an evicted flow when it is read: the feed read every one in the store's call (the
        // recorder's task) for a browser with a filter, work that is that browser's and belongs in its push loop.
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(Core.Filters.FlowFilter.Parse("~u /item/1$"), null, tail: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var evicted = new EvictedList([Flow(0), Flow(1), Flow(2)]);

        feed.Evicted(evicted, [4, 5, 6]);

        Assert.Equal((0, 0, 1), (evicted.Reads, evicted.Filtered, evicted.Detached));
        Assert.True(await subscription.WaitAsync(timeout.Token)); // the push loop filters the copy
        Assert.True(evicted.Reads + evicted.Filtered > 0);
        Assert.True(subscription.Reader.TryRead(out var item));
        Assert.Equal((FeedItemKind.Evicted, 1L), (item.Kind, item.Count));
    }

    [Fact]
    public async Task A_browsers_filter_counts_the_flows_the_memory_store_evicted_after_it_reused_their_records()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(Core.Filters.FlowFilter.Parse("~bs item/1$"), null, tail: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 1 }, observer: feed);
        static HttpFlow WithBody(int i) =>
            Flow(i) with { Response = WebApiTests.Sample(Guid.Empty).Response! with { Body = new FlowBody(System.Text.Encoding.UTF8.GetBytes("item/" + i), i < 10 ? 6 : 7, null) } };

        await store.AppendAsync([.. Enumerable.Range(0, 4).Select(WithBody)]);
        await store.AppendAsync([.. Enumerable.Range(10, 50).Select(WithBody)]); // the blocks hold other records now

        Assert.True(await subscription.WaitAsync(timeout.Token));
        long evicted = 0;
        while (subscription.Reader.TryRead(out var item))
        {
            evicted += item.Kind == FeedItemKind.Evicted ? item.Count : 0;
        }

        Assert.Equal(1, evicted); // /item/1's body, among the 52 evicted
    }

    [Fact]
    public void A_browser_that_falls_behind_its_queue_is_told_to_reload()
    {
        // A full channel in DropWrite mode drops the item and still says it wrote it: the overflow went unnoticed, and
        // the browser silently missed rows instead of reloading.
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null);

        Publish(feed, Enumerable.Range(0, FlowFeed.SubscriberCapacity + 1).Select(i => Flow(i)));

        Assert.True(subscription.TakeOverflow());
    }

    [Fact]
    public async Task A_browser_whose_filter_falls_behind_reloads_and_the_recorder_never_waits_for_it()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(Core.Filters.FlowFilter.Parse("~u /item/"), null, tail: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // More than it holds, with no push in between: the feed drops and flags the overflow, it never blocks.
        Publish(feed, Enumerable.Range(0, FlowFeed.PendingCapacity + 1).Select(i => Flow(i)));

        Assert.True(await subscription.WaitAsync(timeout.Token));
        Assert.True(subscription.TakeOverflow());

        // What its push loop filtered before the reload is in the list the browser reads again.
        var rows = new List<FlowSummary>();
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Empty(rows);
    }

    [Fact]
    public void A_browser_told_to_reload_is_not_pushed_the_rows_its_reloaded_list_has()
    {
        // The overflow's reload discarded the queue but kept the ring of newest rows: a client that keeps the stream open
        // after the reload event (the API's) read the list again and was then pushed those rows a second time.
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true);
        Publish(feed, Enumerable.Range(0, FlowFeed.TailRows + 1).Select(i => Flow(i)));
        for (var i = 0; i <= FlowFeed.SubscriberCapacity; i++)
        {
            feed.InterceptChanged();
        }

        Assert.True(subscription.TakeOverflow());

        var rows = new List<FlowSummary>();
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Empty(rows);
        Assert.False(subscription.Reader.TryRead(out _));

        // What comes after the reload is pushed as usual.
        var after = Flow(1_000);
        feed.Stored([new SequencedFlow(after, FlowFeed.TailRows + 2, Replaced: false)]);
        Assert.False(subscription.TakeOverflow());
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Equal(after.Id, Assert.Single(rows).Id);
    }

    /// <summary>As a store tells its observer: new flows, numbered from 1.</summary>
    private static void Publish(FlowFeed feed, IEnumerable<Flow> flows) =>
        feed.Stored([.. flows.Select((flow, i) => new SequencedFlow(flow, i + 1, Replaced: false))]);

    private static HttpFlow Flow(int i) =>
        WebApiTests.Sample(Guid.NewGuid()) with { Request = WebApiTests.Sample(Guid.Empty).Request with { Path = "/item/" + i } };

    /// <summary>Evicted flows as the in-memory store gives them, counting how often they are read or filtered (its
    /// copies share the counts).</summary>
    private sealed class EvictedList(Flow[] flows, EvictedList? original = null) : IFilterableFlowList
    {
        private int _reads;
        private int _filtered;
        private int _detached;

        public int Reads => Volatile.Read(ref Counts._reads);

        public int Filtered => Volatile.Read(ref Counts._filtered);

        public int Detached => Volatile.Read(ref Counts._detached);

        public int Count => flows.Length;

        private EvictedList Counts => original ?? this;

        public Flow this[int index]
        {
            get
            {
                Interlocked.Increment(ref Counts._reads);
                return flows[index];
            }
        }

        public bool Matches(int index, Core.Filters.FlowFilter filter)
        {
            Interlocked.Increment(ref Counts._filtered);
            return filter.Matches(flows[index].AsFilterable());
        }

        public IFilterableFlowList Detach()
        {
            Interlocked.Increment(ref Counts._detached);
            return new EvictedList(flows, Counts);
        }

        public IEnumerator<Flow> GetEnumerator() => Enumerable.Range(0, Count).Select(i => this[i]).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>A flow's filterable view that counts how often a filter reads its URL or method.</summary>
    private sealed class ReadCounting(Core.Filters.IFilterableFlow inner) : Core.Filters.IFilterableFlow
    {
        private int _reads;

        public int Reads => Volatile.Read(ref _reads);

        public Core.Filters.FilterFlowKind Kind => inner.Kind;

        public string? Method => Read(inner.Method);

        public string? Url => Read(inner.Url);

        public string? Host => inner.Host;

        public Core.Http.HttpHeaders? RequestHeaders => inner.RequestHeaders;

        public Core.Http.HttpHeaders? ResponseHeaders => inner.ResponseHeaders;

        public ReadOnlyMemory<byte> RequestBody => inner.RequestBody;

        public ReadOnlyMemory<byte> ResponseBody => inner.ResponseBody;

        public bool HasResponse => inner.HasResponse;

        public int? StatusCode => inner.StatusCode;

        public IReadOnlyList<Core.Filters.FilterMessage> Messages => inner.Messages;

        public bool IsWebSocket => inner.IsWebSocket;

        public bool HasError => inner.HasError;

        public string? ClientAddress => inner.ClientAddress;

        public string? ServerAddress => inner.ServerAddress;

        public string? Marker => inner.Marker;

        public string? Comment => inner.Comment;

        public Core.Filters.FilterReplayKind Replay => inner.Replay;

        private T Read<T>(T value)
        {
            Interlocked.Increment(ref _reads);
            return value;
        }
    }
}
