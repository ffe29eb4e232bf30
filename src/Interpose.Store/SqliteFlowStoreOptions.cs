namespace Interpose.Store;

/// <summary>How <see cref="SqliteFlowStore.Open"/> opens a file.</summary>
public sealed record SqliteFlowStoreOptions
{
    /// <summary>
    /// The most flows written in one transaction by the <see cref="Interpose.Core.Flows.IFlowSink"/> side: a batch
    /// is committed when it reaches this size or when the recorder's queue runs empty, whichever comes first. 256:
    /// large enough that a commit (one WAL append, no fsync under synchronous=NORMAL) is amortised over many flows
    /// (13,800 flows/s filled in bench/Interpose.StoreBench, docs/performance.md), small enough that a crash loses little.
    /// </summary>
    public const int DefaultBatchSize = 256;

    /// <summary>
    /// The most body bytes held in one pending batch before it is committed early: 16 MiB, sixteen bodies at the
    /// default recording cap (1 MiB), so a burst of large bodies does not pile up in memory.
    /// </summary>
    public const long DefaultMaxBatchBodyBytes = 16L * 1024 * 1024;

    /// <summary>Open for reading only: the file is never changed (not even migrated), and must exist.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>See <see cref="DefaultBatchSize"/>.</summary>
    public int BatchSize { get; init; } = DefaultBatchSize;

    /// <summary>See <see cref="DefaultMaxBatchBodyBytes"/>.</summary>
    public long MaxBatchBodyBytes { get; init; } = DefaultMaxBatchBodyBytes;

    /// <summary>WAL bytes between the store's checkpoints (<c>SqliteFlowStore.DefaultWalCheckpointBytes</c>); tests
    /// set it low.</summary>
    internal long WalCheckpointBytes { get; init; } = SqliteFlowStore.DefaultWalCheckpointBytes;

    /// <summary>The most WAL bytes before the writer starts the WAL over (<c>SqliteFlowStore.DefaultWalLimitBytes</c>);
    /// tests set it low.</summary>
    internal long WalLimitBytes { get; init; } = SqliteFlowStore.DefaultWalLimitBytes;

    /// <summary>The largest the file may grow, in bytes (SQLite's <c>max_page_count</c>); past it a write fails as on a
    /// full disk. Null: no limit but the disk.</summary>
    public long? MaxFileBytes { get; init; }
}
