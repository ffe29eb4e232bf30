using System.Collections.Concurrent;
using System.Threading.Channels;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Store;

namespace Interpose.Web;

/// <summary>
/// The live list's source: the store's observer (<see cref="IFlowStoreObserver"/>), so recorded flows (and changes to
/// the list) go to every connected browser once the store has them. Publishing never waits: each browser has a bounded
/// queue of rows, and one that falls behind is told to reload instead of growing it. A browser that follows the tail
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
            subscriber.Signal(new FeedItem(FeedItemKind.Removed, null, ids, flows is null ? 0 : subscriber.CountMatching(flows)));
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

        foreach (var subscriber in _subscribers.Keys)
        {
            subscriber.Evicted(flows, evictedBy);
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

    private int _overflowed;
    private long _skipped;

    public FeedSubscription(FlowFeed feed, FlowFilter? filter, FlowFilter? highlight, bool tail, bool lined)
    {
        _feed = feed;
        _filter = filter;
        _highlight = highlight;
        if (lined)
        {
            _held = [];
            _heldEvictions = [];
        }

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

    /// <summary>
    /// Lines the subscription up with the list its browser loaded (read after it subscribed): what it was told so far is
    /// kept only where its sequence is above the list's, and so is everything after. Without a sequence (a store that
    /// does not number its flows) what it was told so far is dropped: it was stored before the list was read.
    /// </summary>
    /// <param name="sequence">The list's <see cref="FlowTail.Sequence"/>.</param>
    public void Begin(long? sequence)
    {
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

    public void Offer(Flow flow, IFilterableFlow filterable, bool isNew, long sequence)
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

        _wake?.Writer.TryWrite(0);
    }

    public void Evicted(IReadOnlyList<Flow> flows, IReadOnlyList<long> evictedBy)
    {
        // The in-memory store's list answers a filter on its kept fields without decoding each flow; without a filter
        // the flows are counted without being read (the store decodes an evicted flow only when it is read). In the
        // lock, so that an eviction told while the list is read is held or counted, never lost between the two.
        var filterable = flows as Store.IFilterableFlowList;
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
        if (!_items.Writer.TryWrite(item))
        {
            Volatile.Write(ref _overflowed, 1);
        }

        _wake?.Writer.TryWrite(0);
    }

    public void Dispose() => _feed.Unsubscribe(this);
}
