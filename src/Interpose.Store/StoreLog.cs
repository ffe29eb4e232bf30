using Microsoft.Extensions.Logging;

namespace Interpose.Store;

/// <summary>The flow store's log messages (event ids 400-419; the proxy's are in ProxyLog).</summary>
internal static partial class StoreLog
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Debug, Message = "Flow store {Path}: committed {Count} flows ({Total} written by this process)")]
    public static partial void Committed(ILogger logger, string path, int count, long total);

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "Flow store {Path}: migrated the schema from version {From} to {To}")]
    public static partial void Migrated(ILogger logger, string path, int from, int to);

    [LoggerMessage(EventId = 402, Level = LogLevel.Debug, Message = "Flow store {Path} opened {Mode} (schema version {Version})")]
    public static partial void Opened(ILogger logger, string path, string mode, int version);

    [LoggerMessage(EventId = 403, Level = LogLevel.Information, Message = "In-memory flow store full ({MaxFlows} flows or {MaxBodyBytes} body bytes): evicting the oldest flows ({Evicted} so far; keep them all with -w FILE)")]
    public static partial void MemoryEvicting(ILogger logger, int maxFlows, long maxBodyBytes, long evicted);

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning, Message = "Flow store {Path}: a checkpoint of the write-ahead log failed ({Reason}); the log grows until the next one succeeds")]
    public static partial void CheckpointFailed(ILogger logger, string path, string reason, Exception exception);

    [LoggerMessage(EventId = 405, Level = LogLevel.Error, Message = "Flow store {Path}: committing the open batch before another write failed; its {Count} recorded flows are lost, and the recorder is told at its next write")]
    public static partial void BatchLost(ILogger logger, string path, int count, Exception exception);
}
