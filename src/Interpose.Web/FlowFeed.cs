using System.Collections.Concurrent;
using System.Threading.Channels;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Store;

namespace Interpose.Web;

/// <summary>
/// The live list's source: the store's observer (<see cref="IFlowStoreObserver"/>), so recorded flows (and changes to
/// the list) go to every connected browser once the store has them. Publishing never waits: each browser has a bounded
/// queue of rows, and one that falls behind is told to reload instead of growing it. Nor does it evaluate a browser's
/// filter or highlight (a user's regular expression may take its whole timeout on every flow): a browser with either gets
/// what is published in a bounded queue of its own (<see cref="PendingCapacity"/>), which its push loop filters. A browser that follows the tail
/// (the page) gets, per push, only the newest <see cref="TailRows"/> new rows and the count of those it skipped, so its
/// work per second stays bounded whatever the proxy's rate: rows it will not show are counted, never turned into JSON.
/// A browser whose stream begins with the list (<c>/api/events?list=N</c>) is told only what that list does not have:
/// flows and evictions with a sequence above the list's (<see cref="FlowTail.Sequence"/>).
/// </summary>
public sealed class FlowFeed : IFlowStoreObserver
{
    /// <summary>Rows queued for one browser at most before it is told to reload: ten seconds of a proxy doing ~5,000
    /// exchanges a second (bench/load's rate on this machine), at about 300 bytes a row, 15 MiB at worst.</summary>
    public const int SubscriberCapacity = 50_000;

    /// <summary>New rows a tail-following browser gets per push at most (the newer ones win): more than a screenful of
    /// 22-pixel rows on a 4K display (2,160 px, 98 rows) with the list's overscan, so the rows in view are always
    /// loaded. At ten pushes a second (WebApi.BatchInterval) that is 2,000 rows a second at most, whatever the rate; while
    /// the ring overflows, four pushes a second (WebApi.BusyBatchInterval), 800 rows.</summary>
    public const int TailRows = 200;

    /// <summary>What a browser with a filter or a highlight is told at most before its push loop filters it; past it the
    /// browser reloads. As many flows as the recorder's own queue holds (FlowRecorder, 4,096): at bench/load's ~5,000
    /// exchanges a second, three of the 250 ms pauses between pushes (WebApi.BusyBatchInterval). The flows are the
    /// recorder's (shared by every browser), so they cost this many references, not copies; evicted flows are one copy of
    /// their records per eviction, shared by every browser (<see cref="Evicted"/>).</summary>
    public const int PendingCapacity = 4_096;

    private readonly ConcurrentDictionary<FeedSubscription, byte> _subscribers = new();

    /// <summary>How many browsers are connected to the live list.</summary>
    public int SubscriberCount => _subscribers.Count;

    /// <summary>Sends the flows a store kept to every browser whose filter they match: new ones as new rows, ones
    /// appended again (a marker, a comment) as changed rows, which a browser that does not have the row ignores.</summary>
    /// <param name="flows">The flows, with their sequences.</param>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    public void Stored(IReadOnlyList<SequencedFlow> flows)
    {
        ArgumentNullException.ThrowIfNull(flows);
        if (_subscribers.IsEmpty)
        {
            return;
        }

        foreach (var (flow, sequence, replaced) in flows)
        {
            var filterable = flow.AsFilterable();
            foreach (var subscriber in _subscribers.Keys)
            {
                subscriber.Offer(flow, filterable, !replaced, sequence);
            }
        }
    }

    /// <summary>Tells every browser that flows were removed, and how many of them its filter matches: those were in
    /// its list, loaded or not.</summary>
    /// <param name="flows">The removed flows; null when the list was cleared.</param>
    public void Removed(IReadOnlyList<Flow>? flows)
    {
        IReadOnlyList<Guid>? ids = flows?.Select(f => f.Id).ToArray();
        foreach (var subscriber in _subscribers.Keys)
        {
            subscriber.Removed(flows, ids);
        }
    }

    /// <summary>Tells every browser how many of its rows the store evicted (the oldest flows, past its caps): a browser's
    /// list is in the store's order, so they are its first rows; a count per browser, never the ids.</summary>
    /// <param name="flows">The evicted flows.</param>
    /// <param name="evictedBy">For each, the sequence of the append that evicted it.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The lists' lengths differ.</exception>
    public void Evicted(IReadOnlyList<Flow> flows, IReadOnlyList<long> evictedBy)
    {
        ArgumentNullException.ThrowIfNull(flows);
        ArgumentNullException.ThrowIfNull(evictedBy);
        if (flows.Count != evictedBy.Count)
        {
            throw new ArgumentException("one sequence per evicted flow", nameof(evictedBy));
        }

        // A browser with a filter counts the evicted flows it had in its push loop, after the store's call, when the
        // store's list may no longer be read: the in-memory store's list is detached now (its records copied as bytes,
        // not decoded: decoding every evicted flow here put a browser's work on the recorder's task), once for all such
        // browsers, whose push loops decode what their filters need. A list of another kind is read now, as its store
        // requires (IFlowStoreObserver.Evicted).
        IReadOnlyList<Flow>? kept = null;
        long[]? by = null;
        foreach (var subscriber in _subscribers.Keys)
        {
            if (subscriber.Filters)
            {
                kept ??= Readable(flows);
                by ??= [.. evictedBy];
                subscriber.Evicted(kept, by);
            }
            else
            {
                subscriber.Evicted(flows, evictedBy);
            }
        }

        static IReadOnlyList<Flow> Readable(IReadOnlyList<Flow> flows) =>
            flows is IFilterableFlowList filterable ? filterable.Detach() : [.. flows];
    }

    /// <summary>Tells every browser that the list of paused (intercepted) exchanges changed.</summary>
    public void InterceptChanged()
    {
        foreach (var subscriber in _subscribers.Keys)
        {
            subscriber.Signal(new FeedItem(FeedItemKind.Intercept, null, null));
        }
    }

    /// <summary>A browser's subscription; with <paramref name="lined"/>, what it is told waits until
    /// <see cref="FeedSubscription.Begin"/> gives the sequence of the list it loaded.</summary>
    internal FeedSubscription Subscribe(FlowFilter? filter, FlowFilter? highlight, bool tail = false, bool lined = false)
    {
        var subscription = new FeedSubscription(this, filter, highlight, tail, lined);
        _subscribers.TryAdd(subscription, 0);
        return subscription;
    }

    internal void Unsubscribe(FeedSubscription subscription) => _subscribers.TryRemove(subscription, out _);
}

/// <summary>What a browser is told.</summary>
internal enum FeedItemKind
{
    /// <summary>A new or changed row (a changed one only, for a tail-following browser).</summary>
    Row,

    /// <summary>Rows were removed (ids; <see cref="FeedItem.Count"/> of them match the browser's filter), or all (no ids).</summary>
    Removed,

    /// <summary>The paused list changed.</summary>
    Intercept,

    /// <summary>The browser fell behind: it reloads the list.</summary>
    Reload,

    /// <summary>The store evicted this many of the browser's oldest rows (<see cref="FeedItem.Count"/>).</summary>
    Evicted,
}

internal readonly record struct FeedItem(FeedItemKind Kind, FlowSummary? Row, IReadOnlyList<Guid>? Ids, long Count = 0);

/// <summary>One browser's queue; for a tail-following browser, new rows go to a ring of the newest
/// <see cref="FlowFeed.TailRows"/> instead, and the ones it pushes out are counted.</summary>
internal sealed class FeedSubscription : IDisposable
{
    private readonly FlowFeed _feed;
    private readonly FlowFilter? _filter;
    private readonly FlowFilter? _highlight;

    /// <summary>The rows and signals to push. NOTE: a full channel in DropWrite mode drops the item and still answers
    /// TryWrite with true: the overflow is flagged by its itemDropped callback.</summary>
    private readonly Channel<FeedItem> _items;

    /// <summary>The newest new flows (and whether the highlight matches them): rows are built only for these, at push
    /// time. A ring under <see cref="_tailLock"/> with <see cref="_skipped"/>, the count of rows it pushed out: a push
    /// takes both at once, so the count it reports is exactly the rows that came before the ones it sends. (Counted apart
    /// from the ring, a row pushed out while a push read it was counted in the next push, whose gap the browser places
    /// after this push's rows: the rows after it then sat one position off and the list had to reload.)</summary>
    private readonly Queue<(Flow Flow, bool Highlight)>? _tail;

    /// <summary>Guards the ring, <see cref="_skipped"/>, and the lining-up state below.</summary>
    private readonly Lock _tailLock = new();

    /// <summary>Until <see cref="Begin"/> (a subscription that waits for its list): the new flows that matched, with
    /// their sequences, and the sequences that evicted the evicted flows that matched. Null once begun.</summary>
    private List<(Flow Flow, long Sequence, bool Highlight)>? _held;
    private List<long>? _heldEvictions;

    /// <summary>The sequence of the browser's list: new flows and evictions up to it are in that list already.</summary>
    private long _since;

    /// <summary>The push loop's scratch copy of the ring (only the single reader uses it).</summary>
    private readonly List<(Flow Flow, bool Highlight)> _taken = [];

    /// <summary>One pending wake-up for the reader of a tail-following subscription, whichever queue got something.</summary>
    private readonly Channel<byte>? _wake;

    /// <summary>For a browser with a filter or a highlight: what it is told, unfiltered, in the order it is told, until
    /// its push loop filters it (<see cref="Drain"/>); null for a browser without either, which is told at once.</summary>
    private readonly Channel<Pending>? _pending;

    private int _overflowed;
    private long _skipped;

    public FeedSubscription(FlowFeed feed, FlowFilter? filter, FlowFilter? highlight, bool tail, bool lined)
    {
        _feed = feed;
        _filter = filter;
        _highlight = highlight;
        _items = Channel.CreateBounded<FeedItem>(
            new BoundedChannelOptions(FlowFeed.SubscriberCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite },
            _ => Volatile.Write(ref _overflowed, 1));
        if (filter is not null || highlight is not null)
        {
            _pending = Channel.CreateBounded<Pending>(
                new BoundedChannelOptions(FlowFeed.PendingCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite },
                _ => Volatile.Write(ref _overflowed, 1));
        }

        if (lined)
        {
            _held = [];
            _heldEvictions = [];
        }

        if (tail)
        {
            _tail = new Queue<(Flow, bool)>(FlowFeed.TailRows);
        }

        if (tail || _pending is not null)
        {
            _wake = Channel.CreateBounded<byte>(new BoundedChannelOptions(1) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
        }
    }

    /// <summary>Whether the browser has a filter or a highlight, evaluated in its push loop.</summary>
    public bool Filters => _pending is not null;

    public ChannelReader<FeedItem> Reader => _items.Reader;

    /// <summary>Waits until there is something to push (either queue); for a browser with a filter or a highlight, then
    /// filters what it was told since (on the caller's task: the push loop's).</summary>
    public async ValueTask<bool> WaitAsync(CancellationToken cancellationToken)
    {
        if (_wake is null)
        {
            return await _items.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
        }

        if (!_items.Reader.TryPeek(out _))
        {
            await _wake.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }

        Drain();
        return true;
    }

    /// <summary>
    /// Whether an item was dropped since the last call; if so, forgets what is queued (the rows and signals, the ring and
    /// its count of skipped rows): the reader sends a reload instead, and the browser's list, read again, has all of it.
    /// (A ring kept past the reload was pushed after it, so a client that kept the stream open got those rows twice.)
    /// </summary>
    public bool TakeOverflow()
    {
        if (Interlocked.Exchange(ref _overflowed, 0) == 0)
        {
            return false;
        }

        while (_items.Reader.TryRead(out _))
        {
        }

        ClearTail();
        return true;
    }

    /// <summary>Moves the ring's rows (oldest first) to <paramref name="rows"/>; returns how many new rows matched but were
    /// pushed out of the ring since the last call (they came before these).</summary>
    public long TakeTail(List<FlowSummary> rows)
    {
        if (_tail is null)
        {
            return 0;
        }

        long skipped;
        lock (_tailLock)
        {
            skipped = _skipped;
            _skipped = 0;
            _taken.AddRange(_tail);
            _tail.Clear();
        }

        // The rows are built outside the lock: the recorder's Offer never waits on JSON-bound work.
        foreach (var (flow, highlight) in _taken)
        {
            rows.Add(FlowSummary.From(flow, highlight));
        }

        _taken.Clear();
        return skipped;
    }

    /// <summary>Forgets the ring and its count (the list was cleared).</summary>
    public void ClearTail()
    {
        if (_tail is not null)
        {
            lock (_tailLock)
            {
                _tail.Clear();
                _skipped = 0;
            }
        }
    }

    /// <summary>
    /// Lines the subscription up with the list its browser loaded (read after it subscribed): what it was told so far is
    /// kept only where its sequence is above the list's, and so is everything after. Without a sequence (a store that
    /// does not number its flows) what it was told so far is dropped: it was stored before the list was read.
    /// </summary>
    /// <param name="sequence">The list's <see cref="FlowTail.Sequence"/>.</param>
    public void Begin(long? sequence)
    {
        // What was told before the list was read is held, as for a browser without a filter.
        Drain();
        var wake = false;
        lock (_tailLock)
        {
            if (_held is null)
            {
                return;
            }

            var (held, heldEvictions) = (_held, _heldEvictions!);
            (_held, _heldEvictions) = (null, null);
            if (sequence is not { } since)
            {
                return;
            }

            // In the lock, so that the flows told since (waiting for it) come after these.
            _since = since;
            foreach (var (flow, flowSequence, highlight) in held)
            {
                if (flowSequence > since)
                {
                    AddNew(flow, highlight);
                    wake = true;
                }
            }

            long evicted = 0;
            foreach (var by in heldEvictions)
            {
                evicted += by > since ? 1 : 0;
            }

            if (evicted > 0)
            {
                Signal(new FeedItem(FeedItemKind.Evicted, null, null, evicted));
            }
        }

        if (wake)
        {
            _wake?.Writer.TryWrite(0);
        }
    }

    /// <summary>A flow the store kept (the recorder's task): passed on at once to a browser without a filter or a
    /// highlight, queued for its push loop to filter otherwise.</summary>
    public void Offer(Flow flow, IFilterableFlow filterable, bool isNew, long sequence)
    {
        if (_pending is not null)
        {
            Defer(new Pending(PendingKind.Stored, flow, filterable, isNew, sequence, null, null, null));
            return;
        }

        Pass(flow, highlighted: false, isNew, sequence);
    }

    /// <summary>Filters what was told since the last call, in the order it was told (the push loop's task).</summary>
    private void Drain()
    {
        if (_pending is null)
        {
            return;
        }

        while (_pending.Reader.TryRead(out var item))
        {
            switch (item.Kind)
            {
                case PendingKind.Stored:
                    bool matches, highlighted;
                    try
                    {
                        matches = _filter is null || _filter.Matches(item.Filterable!);
                        highlighted = _highlight is not null && _highlight.Matches(item.Filterable!);
                    }
                    catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
                    {
                        // A browser's pathological regex costs that browser its row, and its own push loop the time.
                        continue;
                    }

                    if (matches)
                    {
                        Pass(item.Flow!, highlighted, item.IsNew, item.Sequence);
                    }

                    break;
                case PendingKind.Evicted:
                    CountEvicted(item.Flows!, item.EvictedBy!);
                    break;
                case PendingKind.Removed:
                    Signal(new FeedItem(FeedItemKind.Removed, null, item.Ids, item.Flows is null ? 0 : CountMatching(item.Flows)));
                    break;
            }
        }
    }

    /// <summary>Queues what a browser with a filter is told; past <see cref="FlowFeed.PendingCapacity"/> it reloads.</summary>
    private void Defer(Pending item)
    {
        _pending!.Writer.TryWrite(item); // a dropped item flags the overflow (the channel's itemDropped)
        _wake!.Writer.TryWrite(0);
    }

    /// <summary>A flow that matched: a changed row to the queue, a new one to the ring (or the queue), or held until the
    /// list's sequence is known.</summary>
    private void Pass(Flow flow, bool highlighted, bool isNew, long sequence)
    {
        if (!isNew)
        {
            // A changed row replaces the browser's row of its id, if it has one: in its list or not, the latest wins.
            Signal(new FeedItem(FeedItemKind.Row, FlowSummary.From(flow, highlighted), null));
            return;
        }

        lock (_tailLock)
        {
            if (_held is not null)
            {
                Hold(_held, (flow, sequence, highlighted));
                return;
            }

            if (sequence <= _since)
            {
                return;
            }

            AddNew(flow, highlighted);
        }

        // A row filtered in the push loop is in time for the push that filtered it.
        if (_pending is null)
        {
            _wake?.Writer.TryWrite(0);
        }
    }

    /// <summary>Flows were removed (null: all): told at once to a browser without a filter; to one with a filter after
    /// what it was told before, by its push loop, which counts the removed flows its filter matches.</summary>
    public void Removed(IReadOnlyList<Flow>? flows, IReadOnlyList<Guid>? ids)
    {
        if (_pending is not null)
        {
            Defer(new Pending(PendingKind.Removed, null, null, false, 0, flows, null, ids));
            return;
        }

        Signal(new FeedItem(FeedItemKind.Removed, null, ids, flows?.Count ?? 0));
    }

    /// <summary>Flows the store evicted: counted at once for a browser without a filter; queued for one with a filter
    /// (<paramref name="flows"/> then a copy readable after the store's call: <see cref="FlowFeed.Evicted"/>).</summary>
    public void Evicted(IReadOnlyList<Flow> flows, IReadOnlyList<long> evictedBy)
    {
        if (_pending is not null)
        {
            Defer(new Pending(PendingKind.Evicted, null, null, false, 0, flows, evictedBy, null));
            return;
        }

        CountEvicted(flows, evictedBy);
    }

    private void CountEvicted(IReadOnlyList<Flow> flows, IReadOnlyList<long> evictedBy)
    {
        // The in-memory store's list answers a filter on its kept fields without decoding each flow; without a filter
        // the flows are counted without being read (the store decodes an evicted flow only when it is read). In the
        // lock, so that an eviction told while the list is read is held or counted, never lost between the two.
        var filterable = flows as IFilterableFlowList;
        long count = 0;
        lock (_tailLock)
        {
            for (var i = 0; i < flows.Count; i++)
            {
                try
                {
                    if (_filter is not null && !(filterable?.Matches(i, _filter) ?? _filter.Matches(flows[i].AsFilterable())))
                    {
                        continue;
                    }
                }
                catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
                {
                    // As in Offer: not counted; the page notices the drift when it next fetches rows by position, and reloads.
                    continue;
                }

                if (_heldEvictions is not null)
                {
                    Hold(_heldEvictions, evictedBy[i]);
                }
                else if (evictedBy[i] > _since)
                {
                    count++;
                }
            }

            if (count > 0)
            {
                Signal(new FeedItem(FeedItemKind.Evicted, null, null, count));
            }
        }
    }

    /// <summary>How many of <paramref name="flows"/> the filter matches (a regular expression that times out counts as a
    /// match: the browser then reloads rather than keep a row that may be gone).</summary>
    public long CountMatching(IReadOnlyList<Flow> flows)
    {
        long count = 0;
        foreach (var flow in flows)
        {
            try
            {
                count += _filter is null || _filter.Matches(flow.AsFilterable()) ? 1 : 0;
            }
            catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>A new row: to the ring (a tail-following browser), else to the queue; the caller holds the lock.</summary>
    private void AddNew(Flow flow, bool highlighted)
    {
        if (_tail is null)
        {
            Signal(new FeedItem(FeedItemKind.Row, FlowSummary.From(flow, highlighted), null));
            return;
        }

        if (_tail.Count == FlowFeed.TailRows)
        {
            _tail.Dequeue();
            _skipped++;
        }

        _tail.Enqueue((flow, highlighted));
    }

    /// <summary>Keeps something told before the list was read; past the queue's capacity the browser reloads instead.</summary>
    private void Hold<T>(List<T> held, T item)
    {
        if (_held!.Count + _heldEvictions!.Count >= FlowFeed.SubscriberCapacity)
        {
            Volatile.Write(ref _overflowed, 1);
            _wake?.Writer.TryWrite(0);
            return;
        }

        held.Add(item);
    }

    public void Signal(FeedItem item)
    {
        _items.Writer.TryWrite(item); // a dropped item flags the overflow (the channel's itemDropped)
        _wake?.Writer.TryWrite(0);
    }

    public void Dispose() => _feed.Unsubscribe(this);

    private enum PendingKind
    {
        Stored,
        Evicted,
        Removed,
    }

    /// <summary>What a browser with a filter was told, not yet filtered.</summary>
    private readonly record struct Pending(PendingKind Kind, Flow? Flow, IFilterableFlow? Filterable, bool IsNew, long Sequence,
        IReadOnlyList<Flow>? Flows, IReadOnlyList<long>? EvictedBy, IReadOnlyList<Guid>? Ids);
}
