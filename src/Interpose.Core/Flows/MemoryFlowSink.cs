using System.Collections.Concurrent;

namespace Interpose.Core.Flows;

/// <summary>Keeps every flow in memory, in the order written (for tests, embedders and small sessions).</summary>
public sealed class MemoryFlowSink : IFlowSink
{
    private readonly ConcurrentQueue<Flow> _flows = new();

    /// <summary>The flows written so far, in order (a snapshot).</summary>
    public IReadOnlyList<Flow> Flows => [.. _flows];

    /// <summary>How many flows were written.</summary>
    public int Count => _flows.Count;

    /// <summary>Takes one flow.</summary>
    /// <param name="flow">The flow.</param>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    public ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(flow);
        _flows.Enqueue(flow);
        return default;
    }

    /// <summary>Nothing to flush.</summary>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>A completed task.</returns>
    public ValueTask FlushAsync(CancellationToken cancellationToken) => default;
}
