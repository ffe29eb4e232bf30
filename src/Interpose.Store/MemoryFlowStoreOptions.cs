namespace Interpose.Store;

/// <summary>The caps of a <see cref="MemoryFlowStore"/>; past either, the oldest flows are evicted.</summary>
public sealed record MemoryFlowStoreOptions
{
    /// <summary>The default <see cref="MaxFlows"/>: 100,000, the list size the web UI is built and tested for (issue
    /// 17's "smooth with 100,000 flows"; WebApi.MaxListRows).</summary>
    public const int DefaultMaxFlows = 100_000;

    /// <summary>The default <see cref="MaxBodyBytes"/>: 256 MiB of recorded body and WebSocket message bytes, 256 flows
    /// at the recorder's 1 MiB per-body default (BodyCapture.DefaultMaxBytes); a laptop keeps that in memory without
    /// notice, and bodies are what make flows big.</summary>
    public const long DefaultMaxBodyBytes = 256L * 1024 * 1024;

    /// <summary>The most flows kept; 1 or more.</summary>
    public int MaxFlows { get; init; } = DefaultMaxFlows;

    /// <summary>The most recorded body bytes kept (request and response bodies and WebSocket messages as recorded);
    /// 0 or more. A flow larger than this on its own is kept alone.</summary>
    public long MaxBodyBytes { get; init; } = DefaultMaxBodyBytes;
}
