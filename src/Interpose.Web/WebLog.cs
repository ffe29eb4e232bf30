using Microsoft.Extensions.Logging;

namespace Interpose.Web;

/// <summary>The web UI's log events (stable ids, 500-549).</summary>
internal static partial class WebLog
{
    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Web UI listening on {EndPoint}")]
    public static partial void Listening(ILogger logger, System.Net.IPEndPoint endPoint);

    [LoggerMessage(EventId = 501, Level = LogLevel.Information, Message = "Web UI: refused {Method} {Path} from {Client}: {Reason}")]
    public static partial void Refused(ILogger logger, string method, Microsoft.AspNetCore.Http.PathString path, System.Net.IPAddress? client, string reason);

    [LoggerMessage(EventId = 502, Level = LogLevel.Debug, Message = "Web UI: live list subscriber {Client} fell behind; told to reload")]
    public static partial void SubscriberOverflow(ILogger logger, System.Net.IPAddress? client);

    [LoggerMessage(EventId = 503, Level = LogLevel.Warning, Message = "Web UI: replaying flow {Id} failed")]
    public static partial void ReplayFailed(ILogger logger, Guid id, Exception exception);
}
