using System.Collections.Concurrent;
using System.Threading.Channels;
using Interpose.Core.Filters;
using Interpose.Core.Flows;

namespace Interpose.Web;

/// <summary>
/// The live list's source: recorded flows (and changes to the list) go to every connected browser. Publishing never
/// waits: each browser has a bounded queue of rows, and one that falls behind is told to reload instead of growing it.
/// </summary>
public sealed class FlowFeed
{
    /// <summary>Rows queued for one browser at most before it is told to reload: ten seconds of a proxy doing ~5,000
    /// exchanges a second (bench/load's rate on this machine), at about 300 bytes a row, 15 MiB at worst.</summary>
    public const int SubscriberCapacity = 50_000;

    private readonly ConcurrentDictionary<FeedSubscription, byte> _subscribers = new();

    /// <summary>How many browsers are connected to the live list.</summary>
    public int SubscriberCount => _subscribers.Count;

    /// <summary>Sends new or changed flows to every browser whose filter they match.</summary>
    /// <param name="flows">The flows (an id the browser has replaces its row).</param>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    public void Publish(IEnumerable<Flow> flows)
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
                subscriber.Offer(flow, filterable);
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

    /// <summary>Tells every browser that the list of paused (intercepted) exchanges changed.</summary>
    public void InterceptChanged()
    {
        foreach (var subscriber in _subscribers.Keys)
        {
            subscriber.Signal(new FeedItem(FeedItemKind.Intercept, null, null));
        }
    }

    internal FeedSubscription Subscribe(FlowFilter? filter, FlowFilter? highlight)
    {
        var subscription = new FeedSubscription(this, filter, highlight);
        _subscribers.TryAdd(subscription, 0);
        return subscription;
    }

    internal void Unsubscribe(FeedSubscription subscription) => _subscribers.TryRemove(subscription, out _);
}

/// <summary>What a browser is told.</summary>
internal enum FeedItemKind
{
    /// <summary>A new or changed row.</summary>
    Row,

    /// <summary>Rows were removed (ids), or all (no ids).</summary>
    Removed,

    /// <summary>The paused list changed.</summary>
    Intercept,

    /// <summary>The browser fell behind: it reloads the list.</summary>
    Reload,
}

internal readonly record struct FeedItem(FeedItemKind Kind, FlowSummary? Row, IReadOnlyList<Guid>? Ids);

/// <summary>One browser's queue.</summary>
internal sealed class FeedSubscription(FlowFeed feed, FlowFilter? filter, FlowFilter? highlight) : IDisposable
{
    private readonly Channel<FeedItem> _items = Channel.CreateBounded<FeedItem>(new BoundedChannelOptions(FlowFeed.SubscriberCapacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.DropWrite,
    });

    private int _overflowed;

    public ChannelReader<FeedItem> Reader => _items.Reader;

    /// <summary>Set when an item was dropped; the reader then sends a reload instead of what is queued.</summary>
    public bool TakeOverflow() => Interlocked.Exchange(ref _overflowed, 0) == 1;

    public void Offer(Flow flow, IFilterableFlow filterable)
    {
        bool matches, highlighted;
        try
        {
            matches = filter is null || filter.Matches(filterable);
            highlighted = highlight is not null && highlight.Matches(filterable);
        }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            // A browser's pathological regex costs that browser its row, not the recorder its time.
            return;
        }

        if (matches)
        {
            Signal(new FeedItem(FeedItemKind.Row, FlowSummary.From(flow, highlighted), null));
        }
    }

    public void Signal(FeedItem item)
    {
        if (!_items.Writer.TryWrite(item))
        {
            Volatile.Write(ref _overflowed, 1);
        }
    }

    public void Dispose() => feed.Unsubscribe(this);
}
