using Microsoft.Extensions.Logging;

namespace Interpose.Scripting;

/// <summary>The scripting host's log messages (event ids 500-519).</summary>
internal static partial class ScriptLog
{
    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Script {Path} loaded: {Addons} ({Milliseconds} ms to compile)")]
    public static partial void Loaded(ILogger logger, string path, string addons, long milliseconds);

    [LoggerMessage(EventId = 501, Level = LogLevel.Information, Message = "Script {Path} reloaded: {Addons} ({Milliseconds} ms to compile); new exchanges use it")]
    public static partial void Reloaded(ILogger logger, string path, string addons, long milliseconds);

    [LoggerMessage(EventId = 502, Level = LogLevel.Error, Message = "Script {Path} not reloaded, the previous version keeps running:\n{Errors}")]
    public static partial void ReloadFailed(ILogger logger, string path, string errors);

    [LoggerMessage(EventId = 503, Level = LogLevel.Debug, Message = "Script {Path} saved without a change: not recompiled")]
    public static partial void Unchanged(ILogger logger, string path);

    [LoggerMessage(EventId = 505, Level = LogLevel.Error, Message = "Reloading the scripts failed; they are still watched and the next save is tried again")]
    public static partial void ReloadCrashed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 504, Level = LogLevel.Warning, Message = "Script {Path} cannot be read: {Reason}; the previous version keeps running")]
    public static partial void Unreadable(ILogger logger, string path, string reason);
}
