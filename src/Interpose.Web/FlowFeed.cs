using System.Collections.Concurrent;
using System.Threading.Channels;
using Interpose.Core.Filters;
using Interpose.Core.Flows;

namespace Interpose.Web;

/// <summary>
/// The live list's source: recorded flows (and changes to the list) go to every connected browser. Publishing never
/// waits: each browser has a bounded queue of rows, and one that falls behind is told to reload instead of growing it.
/// A browser that follows the tail (the page) gets, per push, only the newest <see cref="TailRows"/> new rows and the
/// count of those it skipped, so its work per second stays bounded whatever the proxy's rate: rows it will not show
/// are counted, never turned into JSON.
/// </summary>
public sealed class FlowFeed
{
    /// <summary>Rows queued for one browser at most before it is told to reload: ten seconds of a proxy doing ~5,000
    /// exchanges a second (bench/load's rate on this machine), at about 300 bytes a row, 15 MiB at worst.</summary>
    public const int SubscriberCapacity = 50_000;

    /// <summary>New rows a tail-following browser gets per push at most (the newer ones win): more than a screenful of
    /// 22-pixel rows on a 4K display (2,160 px, 98 rows) with the list's overscan, so the rows in view are always
    /// loaded. At ten pushes a second (WebApi.BatchInterval) that is 2,000 rows a second at most, whatever the rate; while
    /// the ring overflows, four pushes a second (WebApi.BusyBatchInterval), 800 rows.</summary>
    public const int TailRows = 200;

    private readonly ConcurrentDictionary<FeedSubscription, byte> _subscribers = new();

    /// <summary>How many browsers are connected to the live list.</summary>
    public int SubscriberCount => _subscribers.Count;

    /// <summary>Sends new flows to every browser whose filter they match.</summary>
    /// <param name="flows">The flows.</param>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    public void Publish(IEnumerable<Flow> flows) => Offer(flows, isNew: true);

    /// <summary>Sends changed flows (a marker, a comment) to every browser whose filter they match; a browser that does
    /// not have a flow's row ignores it.</summary>
    /// <param name="flows">The flows.</param>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    public void Changed(IEnumerable<Flow> flows) => Offer(flows, isNew: false);

    private void Offer(IEnumerable<Flow> flows, bool isNew)
    {
        ArgumentNullException.ThrowIfNull(flows);
        if (_subscribers.IsEmpty)
        {
            return;
        }

        foreach (var flow in flows)
        {
            var filterable = flow.AsFilterable();
            foreach (var subscriber in _subscribers.Keys)
            {
                subscriber.Offer(flow, filterable, isNew);
            }
        }
    }

    /// <summary>Tells every browser that flows were removed.</summary>
    /// <param name="ids">The removed flows; null when the list was cleared.</param>
    public void Removed(IReadOnlyList<Guid>? ids)
    {
        foreach (var subscriber in _subscribers.Keys)
        {
            subscriber.Signal(new FeedItem(FeedItemKind.Removed, null, ids));
        }
    }

    /// <summary>Tells every browser how many of its rows the store evicted (the oldest flows, past its caps): a browser's
    /// list is in the store's order, so they are its first rows; a count per browser, never the ids.</summary>
    /// <param name="flows">The evicted flows.</param>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    public void Evicted(IReadOnlyList<Flow> flows)
    {
        ArgumentNullException.ThrowIfNull(flows);
        foreach (var subscriber in _subscribers.Keys)
        {
            subscriber.Evicted(flows);
        }
    }

    /// <summary>Tells every browser that the list of paused (intercepted) exchanges changed.</summary>
    public void InterceptChanged()
    {
        foreach (var subscriber in _subscribers.Keys)
        {
            subscriber.Signal(new FeedItem(FeedItemKind.Intercept, null, null));
        }
    }

    internal FeedSubscription Subscribe(FlowFilter? filter, FlowFilter? highlight, bool tail = false)
    {
        var subscription = new FeedSubscription(this, filter, highlight, tail);
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

    /// <summary>Rows were removed (ids), or all (no ids).</summary>
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

    private readonly Channel<FeedItem> _items = Channel.CreateBounded<FeedItem>(new BoundedChannelOptions(FlowFeed.SubscriberCapacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.DropWrite,
    });

    /// <summary>The newest new flows (and whether the highlight matches them): rows are built only for these, at push
    /// time. A ring under <see cref="_tailLock"/> with <see cref="_skipped"/>, the count of rows it pushed out: a push
    /// takes both at once, so the count it reports is exactly the rows that came before the ones it sends. (Counted apart
    /// from the ring, a row pushed out while a push read it was counted in the next push, whose gap the browser places
    /// after this push's rows: the rows after it then sat one position off and the list had to reload.)</summary>
    private readonly Queue<(Flow Flow, bool Highlight)>? _tail;

    private readonly Lock _tailLock = new();

    /// <summary>The push loop's scratch copy of the ring (only the single reader uses it).</summary>
    private readonly List<(Flow Flow, bool Highlight)> _taken = [];

    /// <summary>One pending wake-up for the reader of a tail-following subscription, whichever queue got something.</summary>
    private readonly Channel<byte>? _wake;

    private int _overflowed;
    private long _skipped;

    public FeedSubscription(FlowFeed feed, FlowFilter? filter, FlowFilter? highlight, bool tail)
    {
        _feed = feed;
        _filter = filter;
        _highlight = highlight;
        if (tail)
        {
            _tail = new Queue<(Flow, bool)>(FlowFeed.TailRows);
            _wake = Channel.CreateBounded<byte>(new BoundedChannelOptions(1) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
        }
    }

    public ChannelReader<FeedItem> Reader => _items.Reader;

    /// <summary>Waits until there is something to push (either queue).</summary>
    public async ValueTask<bool> WaitAsync(CancellationToken cancellationToken)
    {
        if (_wake is null)
        {
            return await _items.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
        }

        await _wake.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Set when an item was dropped; the reader then sends a reload instead of what is queued.</summary>
    public bool TakeOverflow() => Interlocked.Exchange(ref _overflowed, 0) == 1;

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

    public void Offer(Flow flow, IFilterableFlow filterable, bool isNew)
    {
        bool matches, highlighted;
        try
        {
            matches = _filter is null || _filter.Matches(filterable);
            highlighted = _highlight is not null && _highlight.Matches(filterable);
        }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            // A browser's pathological regex costs that browser its row, not the recorder its time.
            return;
        }

        if (!matches)
        {
            return;
        }

        if (isNew && _tail is not null)
        {
            lock (_tailLock)
            {
                if (_tail.Count == FlowFeed.TailRows)
                {
                    _tail.Dequeue();
                    _skipped++;
                }

                _tail.Enqueue((flow, highlighted));
            }

            _wake!.Writer.TryWrite(0);
        }
        else
        {
            Signal(new FeedItem(FeedItemKind.Row, FlowSummary.From(flow, highlighted), null));
        }
    }

    public void Evicted(IReadOnlyList<Flow> flows)
    {
        if (_filter is null)
        {
            // Counted without reading them: the in-memory store decodes an evicted flow only when it is read.
            if (flows.Count > 0)
            {
                Signal(new FeedItem(FeedItemKind.Evicted, null, null, flows.Count));
            }

            return;
        }

        // The in-memory store's list answers a filter on its kept fields without decoding each flow.
        var filterable = flows as Store.IFilterableFlowList;
        long count = 0;
        for (var i = 0; i < flows.Count; i++)
        {
            try
            {
                count += (filterable?.Matches(i, _filter) ?? _filter.Matches(flows[i].AsFilterable())) ? 1 : 0;
            }
            catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
            {
                // As in Offer: not counted; the page notices the drift when it next fetches rows by position, and reloads.
            }
        }

        if (count > 0)
        {
            Signal(new FeedItem(FeedItemKind.Evicted, null, null, count));
        }
    }

    public void Signal(FeedItem item)
    {
        if (!_items.Writer.TryWrite(item))
        {
            Volatile.Write(ref _overflowed, 1);
        }

        _wake?.Writer.TryWrite(0);
    }

    public void Dispose() => _feed.Unsubscribe(this);
}
