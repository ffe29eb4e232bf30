using Interpose.Core.Flows;

namespace Interpose.Web;

/// <summary>
/// A flow sink that writes to another (the store) and, once the flows are flushed there, announces them on a
/// <see cref="FlowFeed"/>: a browser that asks for a flow it was told about finds it in the store.
/// </summary>
/// <param name="inner">The sink that keeps the flows.</param>
/// <param name="feed">Where they are announced.</param>
public sealed class LiveFlowSink(IFlowSink inner, FlowFeed feed) : IFlowSink
{
    /// <summary>Flows announced at most per batch even when the recorder's queue never runs empty: the store commits a
    /// batch at 256 flows too (docs/flows.md), so they are readable when announced.</summary>
    public const int MaxPending = 256;

    private readonly List<Flow> _pending = [];

    /// <inheritdoc/>
    public async ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken)
    {
        await inner.WriteAsync(flow, cancellationToken).ConfigureAwait(false);
        _pending.Add(flow);
        if (_pending.Count >= MaxPending)
        {
            Announce();
        }
    }

    /// <inheritdoc/>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        Announce();
    }

    private void Announce()
    {
        if (_pending.Count > 0)
        {
            feed.Publish(_pending);
            _pending.Clear();
        }
    }
}
