namespace Interpose.Proxy;

/// <summary>How a <see cref="FlowRecorder"/> records.</summary>
public sealed class FlowRecorderOptions
{
    /// <summary>
    /// The queue between the proxy and the sink, in flows: 1024 absorbs a burst of a busy browser page load (a few
    /// hundred exchanges) while the sink catches up, and bounds memory with <see cref="MaxQueuedBodyBytes"/>.
    /// </summary>
    public const int DefaultQueueCapacity = 1024;

    /// <summary>
    /// The body bytes the queue may hold: 64 MiB, 64 bodies at the default cap, so a slow sink costs bounded memory.
    /// </summary>
    public const long DefaultMaxQueuedBodyBytes = 64L * 1024 * 1024;

    /// <summary>
    /// The most bytes of each body kept (<see cref="BodyCapture.DefaultMaxBytes"/> by default); past it, the length and
    /// SHA-256 of the whole body are kept. Null keeps whole bodies ("all").
    /// </summary>
    public int? MaxBodyBytes { get; set; } = BodyCapture.DefaultMaxBytes;

    /// <summary>
    /// How many flows may wait for the sink (<see cref="DefaultQueueCapacity"/>). From half full, flows are queued
    /// without their body bytes; when full, flows are dropped. Both are counted.
    /// </summary>
    public int QueueCapacity { get; set; } = DefaultQueueCapacity;

    /// <summary>How many body bytes may wait for the sink (<see cref="DefaultMaxQueuedBodyBytes"/>); past it, flows
    /// are queued without their body bytes.</summary>
    public long MaxQueuedBodyBytes { get; set; } = DefaultMaxQueuedBodyBytes;

    /// <summary>The clock for the flows' wall-clock start; the system clock when null.</summary>
    public TimeProvider? TimeProvider { get; set; }
}
