namespace Interpose.Proxy;

/// <summary>How a <see cref="FlowRecorder"/> records.</summary>
public sealed class FlowRecorderOptions
{
    /// <summary>
    /// The queue between the proxy and the sink, in flows: 4096, whose half (where bodies start to be dropped) is 100 ms
    /// of a proxy recording 20,000 exchanges a second. The SQLite store stops writing for tens of milliseconds each time
    /// it starts its WAL over (about every 64 MiB: the last frames copied and the database file synced, docs/flows.md);
    /// with 1024 (25 ms at that rate) a busy recording proxy dropped a few hundred bodies a minute at those moments
    /// (docs/performance.md, "Recording, tenth look"). Memory stays bounded by <see cref="MaxQueuedBodyBytes"/> for the
    /// bodies and a few KiB of heads and facts per queued flow.
    /// </summary>
    public const int DefaultQueueCapacity = 4096;

    /// <summary>
    /// The body bytes the queue may hold: 64 MiB, 64 bodies at the default cap, so a slow sink costs bounded memory.
    /// </summary>
    public const long DefaultMaxQueuedBodyBytes = 64L * 1024 * 1024;

    /// <summary>
    /// The longest a written flow waits for the sink's flush: 200 ms. Flushing whenever the queue runs empty commits
    /// about one flow at a time under steady load, and a SQLite commit costs about as much CPU as the exchange itself
    /// (measured in docs/performance.md, "Recording overhead"); gathering flows for a fifth of a second commits them
    /// in batches while the newest flow is still on disk before a person could look for it.
    /// </summary>
    public static readonly TimeSpan DefaultFlushInterval = TimeSpan.FromMilliseconds(200);

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

    /// <summary>
    /// How long written flows may wait for the sink's flush (<see cref="DefaultFlushInterval"/>): the sink is flushed when
    /// this much time has passed since the last flush and the queue is empty, and when the recorder completes. A sink
    /// may commit earlier on its own (the SQLite store commits every 256 flows). <see cref="TimeSpan.Zero"/> flushes
    /// whenever the queue runs empty.
    /// </summary>
    public TimeSpan FlushInterval { get; set; } = DefaultFlushInterval;

    /// <summary>The clock for the flows' wall-clock start and the flush interval; the system clock when null.</summary>
    public TimeProvider? TimeProvider { get; set; }
}
