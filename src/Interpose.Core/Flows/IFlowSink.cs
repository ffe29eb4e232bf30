namespace Interpose.Core.Flows;

/// <summary>
/// Where recorded flows go: a file, a database, memory, a network service. A recorder calls it from one background
/// task, one call at a time, never from the proxy's data path, so an implementation may do I/O and need not be
/// thread-safe.
/// </summary>
public interface IFlowSink
{
    /// <summary>Takes one flow. It may be buffered until <see cref="FlushAsync"/>.</summary>
    /// <param name="flow">The flow; the sink must not change it.</param>
    /// <param name="cancellationToken">Cancelled when the recorder stops.</param>
    /// <returns>A task that completes when the flow is taken.</returns>
    /// <exception cref="IOException">The flow could not be written (a full disk, a read-only file).</exception>
    ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken);

    /// <summary>Makes everything written so far durable or visible; called when the recorder's queue runs empty.</summary>
    /// <param name="cancellationToken">Cancelled when the recorder stops.</param>
    /// <returns>A task that completes when the flows are flushed.</returns>
    /// <exception cref="IOException">The flows could not be written.</exception>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>
    /// How many of the flows <see cref="WriteAsync"/> took are kept for good so far, for a sink that keeps them in batches
    /// a failure can lose whole (a database transaction): only flows whose batch was committed count, never those of a
    /// batch that failed. Null (the default) for a sink that keeps each flow when <see cref="WriteAsync"/> returns. A
    /// recorder reads it on its task, after its calls, to count what it recorded (FlowRecorder.Recorded).
    /// </summary>
    long? KeptFlows => null;
}
