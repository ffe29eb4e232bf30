using System.Globalization;
using System.Net;
using Interpose.Core.Http2;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>The proxy's log events. Event ids are stable: scripts and log pipelines may match on them.</summary>
internal static partial class ProxyLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Proxy listening on {EndPoint}")]
    public static partial void Listening(ILogger logger, EndPoint endPoint);

    [LoggerMessage(EventId = 105, Level = LogLevel.Debug, Message = "Start-up warm-up failed (the first connection will be slower)")]
    public static partial void WarmUpFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "Origin certificate validation is OFF (--ssl-insecure): anyone between the proxy and the origins can read and change the traffic")]
    public static partial void SslInsecure(ILogger logger);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "Proxy stopping: no new connections; {Active} connections finishing")]
    public static partial void Stopping(ILogger logger, int active);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "Shutdown deadline passed: closing {Active} connections still open")]
    public static partial void ShutdownDeadline(ILogger logger, int active);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "Proxy stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "Accepting a connection on {EndPoint} failed")]
    public static partial void AcceptFailed(ILogger logger, EndPoint endPoint, Exception exception);

    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "{Client}: {Host}:{Port} failed in phase {Phase} ({Kind}): {Reason}")]
    public static partial void UpstreamFailed(ILogger logger, ClientConnection client, string host, int port, ExchangePhase phase, string kind, string reason);

    [LoggerMessage(EventId = 121, Level = LogLevel.Information, Message = "{Client}: rejected a malformed request ({Reason}), answered {Status}")]
    public static partial void BadRequest(ILogger logger, ClientConnection client, string reason, int status);

    [LoggerMessage(EventId = 122, Level = LogLevel.Debug, Message = "{Client}: connection ended in phase {Phase}: {Reason}")]
    public static partial void ClientConnectionEnded(ILogger logger, ClientConnection client, ExchangePhase phase, string reason);

    [LoggerMessage(EventId = 123, Level = LogLevel.Information, Message = "{Client}: TLS handshake with the client for {Host} failed ({Reason}); the client may not trust the Interpose CA or may pin certificates")]
    public static partial void ClientTlsFailed(ILogger logger, ClientConnection client, string host, string reason);

    [LoggerMessage(EventId = 127, Level = LogLevel.Information, Message = "{Client}: the TLS ClientHello in the tunnel to {Host}:{Port} cannot be read ({Reason}); decided by the CONNECT host")]
    public static partial void ClientHelloUnparsed(ILogger logger, ClientConnection client, string host, int port, string reason);

    [LoggerMessage(EventId = 124, Level = LogLevel.Debug, Message = "{Client}: {Mode} tunnel to {Host}:{Port} closed ({Up} bytes up, {Down} bytes down)")]
    public static partial void TunnelClosed(ILogger logger, ClientConnection client, string mode, string host, int port, long up, long down);

    [LoggerMessage(EventId = 125, Level = LogLevel.Information, Message = "{Client}: request head timed out")]
    public static partial void RequestHeadTimeout(ILogger logger, ClientConnection client);

    [LoggerMessage(EventId = 150, Level = LogLevel.Debug, Message = "HTTP/2 connection of {Client} ended with GOAWAY {Code}: {Reason}")]
    public static partial void Http2ConnectionError(ILogger logger, ClientConnection client, Interpose.Core.Http2.Http2ErrorCode code, string reason);

    [LoggerMessage(EventId = 151, Level = LogLevel.Debug, Message = "HTTP/2 stream {StreamId} of {Client} reset with {Code}: {Reason}")]
    public static partial void Http2StreamReset(ILogger logger, ClientConnection client, int streamId, Interpose.Core.Http2.Http2ErrorCode code, string reason);

    [LoggerMessage(EventId = 153, Level = LogLevel.Debug, Message = "{Client}: stream {StreamId}'s exchange with {Host}:{Port} was cancelled by the client in phase {Phase}")]
    public static partial void ExchangeCancelled(ILogger logger, ClientConnection client, int streamId, string host, int port, ExchangePhase phase);

    [LoggerMessage(EventId = 154, Level = LogLevel.Information, Message = "HTTP/2 client {Client}, stream {StreamId}: {What} not done within {TimeoutSeconds:0} s; {Frame} {Code}")]
    public static partial void Http2Timeout(ILogger logger, ClientConnection client, int streamId, string what, double timeoutSeconds, string frame, Http2ErrorCode code);

    [LoggerMessage(EventId = 155, Level = LogLevel.Debug, Message = "{Client} upgraded to HTTP/2 (Upgrade: h2c) with {SettingCount} settings and a {BodyBytes}-byte body on stream 1")]
    public static partial void H2cUpgraded(ILogger logger, ClientConnection client, int settingCount, int bodyBytes);

    [LoggerMessage(EventId = 156, Level = LogLevel.Debug, Message = "{Client} asked for Upgrade: h2c; answered in HTTP/1.1: {Reason}")]
    public static partial void H2cUpgradeDeclined(ILogger logger, ClientConnection client, string reason);

    [LoggerMessage(EventId = 152, Level = LogLevel.Warning, Message = "HTTP/2 client {Client} exceeded the {Budget} budget: connection closed with GOAWAY ENHANCE_YOUR_CALM")]
    public static partial void Http2BudgetExceeded(ILogger logger, ClientConnection client, string budget);

    [LoggerMessage(EventId = 140, Level = LogLevel.Warning, Message = "Origin {Host}:{Port} sent {Bytes} bytes with no request outstanding (an unsolicited response); its connection is closed and never reused")]
    public static partial void UnsolicitedResponse(ILogger logger, string host, int port, long bytes);

    [LoggerMessage(EventId = 141, Level = LogLevel.Debug, Message = "Idle connection to {Host}:{Port} closed: {Reason}")]
    public static partial void IdleUpstreamClosed(ILogger logger, string host, int port, string reason);

    [LoggerMessage(EventId = 130, Level = LogLevel.Error, Message = "Addon {Addon} failed in {Hook}; failing exchange {ExchangeId}")]
    public static partial void AddonFailed(ILogger logger, string addon, string hook, long exchangeId, Exception exception);

    [LoggerMessage(EventId = 131, Level = LogLevel.Error, Message = "Addon {Addon} failed in {Hook}")]
    public static partial void AddonHookFailed(ILogger logger, string addon, string hook, Exception exception);

    [LoggerMessage(EventId = 136, Level = LogLevel.Warning, Message = "{Client}: the TlsClientHelloAsync hooks for {Host} did not finish within the TLS handshake timeout ({Seconds} s); the connection is closed")]
    public static partial void ClientHelloHooksTimedOut(ILogger logger, ClientConnection client, string host, double seconds);

    [LoggerMessage(EventId = 135, Level = LogLevel.Error, Message = "Exchange {ExchangeId} for {Host}:{Port} failed in phase {Phase} with an internal error (a bug in Interpose or in a hook's code on the way, such as a body transform), not a network failure")]
    public static partial void ExchangeFailedInternally(ILogger logger, long exchangeId, string host, int port, ExchangePhase phase, Exception exception);

    [LoggerMessage(EventId = 134, Level = LogLevel.Error, Message = "The request body for {Host}:{Port} failed in code on its way (a hook's transform or body observer); the exchange fails")]
    public static partial void RequestBodyCodeFailed(ILogger logger, string host, int port, Exception exception);

    [LoggerMessage(EventId = 132, Level = LogLevel.Error, Message = "Addon {Addon} did not complete {Hook} within {TimeoutSeconds} s; failing exchange {ExchangeId} without waiting for it any longer")]
    public static partial void AddonTimedOut(ILogger logger, string addon, string hook, double timeoutSeconds, long exchangeId);

    [LoggerMessage(EventId = 133, Level = LogLevel.Error, Message = "Addon {Addon} did not complete {Hook} within {TimeoutSeconds} s; no longer waiting for it")]
    public static partial void AddonHookTimedOut(ILogger logger, string addon, string hook, double timeoutSeconds);

    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "OPEN PROXY: listening on {EndPoint} without authentication (--allow-open-proxy): anyone who reaches it can relay through it, also into this network")]
    public static partial void OpenProxy(ILogger logger, EndPoint endPoint);

    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "Refused connection from {Client}: not in the client allow-list")]
    public static partial void ClientNotAllowed(ILogger logger, EndPoint client);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "Refused connection from {Client}: {Scope} connection limit {Limit} reached")]
    public static partial void ConnectionLimitReached(ILogger logger, EndPoint client, string scope, int limit);

    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "{Client}: {Method} without valid proxy credentials, answered 407")]
    public static partial void ProxyAuthenticationFailed(ILogger logger, ClientConnection client, string method);

    [LoggerMessage(EventId = 304, Level = LogLevel.Information, Message = "{Client}: CONNECT to port {Port} is not allowed, answered 403")]
    public static partial void ConnectPortRefused(ILogger logger, ClientConnection client, int port);

    [LoggerMessage(EventId = 310, Level = LogLevel.Warning, Message = "Shed connection from {Client}: no complete request head after {WaitedMs} ms, and the {Scope} connection limit {Limit} was reached")]
    public static partial void ConnectionShed(ILogger logger, EndPoint client, long waitedMs, string scope, int limit);

    [LoggerMessage(EventId = 311, Level = LogLevel.Information, Message = "{Client}: {Host}:{Port}: the client moved the body below the minimum data rate ({Rate}) in phase {Phase}: {Bytes} bytes in {WaitedSeconds:0.0} s of waiting on it; exchange ended")]
    public static partial void MinDataRateViolated(ILogger logger, ClientConnection client, string host, int port, ExchangePhase phase, MinDataRate rate, long bytes, double waitedSeconds);

    [LoggerMessage(EventId = 320, Level = LogLevel.Warning, Message = "Flow recording cannot keep up: the queue of {Capacity} flows is filling; bodies are dropped first, then whole flows (logged once per burst)")]
    public static partial void FlowRecordingDropping(ILogger logger, int capacity);

    [LoggerMessage(EventId = 321, Level = LogLevel.Information, Message = "Flow recording caught up; dropped so far: {DroppedBodies} flows' bodies, {DroppedFlows} whole flows")]
    public static partial void FlowRecordingRecovered(ILogger logger, long droppedBodies, long droppedFlows);

    [LoggerMessage(EventId = 322, Level = LogLevel.Error, Message = "Flow recording stopped: the sink {Sink} failed; the proxy goes on without recording")]
    public static partial void FlowSinkFailed(ILogger logger, string sink, Exception exception);

    [LoggerMessage(EventId = 331, Level = LogLevel.Debug, Message = "Server replay: no recorded flow matches {Method} {Url}; {Action}")]
    public static partial void ServerReplayMiss(ILogger logger, string method, string url, Rules.ServerReplayExtra action);

    [LoggerMessage(EventId = 332, Level = LogLevel.Warning, Message = "Server replay: {Method} {Url} matched flow {FlowId}, whose response body was not recorded whole: it {Reason}; answered 502 instead of replaying it")]
    public static partial void ServerReplayTruncated(ILogger logger, string method, string url, Guid flowId, string reason);

    [LoggerMessage(EventId = 106, Level = LogLevel.Debug, Message = "Gave the C heap's free memory back to the system after {Churn} client connections opened or closed ({Milliseconds:F1} ms)")]
    public static partial void NativeHeapTrimmed(ILogger logger, int churn, double milliseconds);

    [LoggerMessage(EventId = 107, Level = LogLevel.Debug, Message = "Quiet after a burst of client connections: gave the collector's free memory back ({Before} bytes committed before, {After} after; {Milliseconds:F1} ms)")]
    public static partial void ManagedHeapReleased(ILogger logger, long before, long after, double milliseconds);

    [LoggerMessage(EventId = 126, Level = LogLevel.Trace, Message = "{Client}: idle between requests, holding {Buffers} pooled buffers; TLS record buffers released when empty: {TlsBuffersReleased}; TLS memory BIO bytes: {TlsBioBytes}; HTTP/1.1 server connections: {ServerConnections}")]
    public static partial void ClientIdle(ILogger logger, ClientConnection client, int buffers, bool tlsBuffersReleased, long tlsBioBytes, int serverConnections);

    [LoggerMessage(EventId = 165, Level = LogLevel.Trace, Message = "Origin connection to {Host}:{Port} idle in the pool, holding {Buffers} pooled buffers; TLS record buffers released when empty: {TlsBuffersReleased}; TLS memory BIO bytes: {TlsBioBytes}")]
    public static partial void UpstreamIdle(ILogger logger, string host, int port, int buffers, bool tlsBuffersReleased, long tlsBioBytes);

    [LoggerMessage(EventId = 175, Level = LogLevel.Debug, Message = "WebSocket to {Host}: the {Direction}'s bytes are not valid frames ({Reason}); relayed on without reading messages")]
    public static partial void WebSocketReadStopped(ILogger logger, string host, string direction, string reason);

    [LoggerMessage(EventId = 176, Level = LogLevel.Error, Message = "WebSocket observer {Observer} failed on a message to or from {Host}; the relay goes on")]
    public static partial void WebSocketObserverFailed(ILogger logger, string observer, string host, Exception exception);

    [LoggerMessage(EventId = 160, Level = LogLevel.Debug, Message = "HTTP/2 origin connection to {Host}:{Port} opened (max {MaxStreams} concurrent streams)")]
    public static partial void Http2UpstreamOpened(ILogger logger, string host, int port, long maxStreams);

    [LoggerMessage(EventId = 161, Level = LogLevel.Debug, Message = "HTTP/2 origin {Host}:{Port} sent GOAWAY {Code} (last stream {LastStreamId}): {Reason}")]
    public static partial void Http2UpstreamGoAway(ILogger logger, string host, int port, Interpose.Core.Http2.Http2ErrorCode code, int lastStreamId, string reason);

    [LoggerMessage(EventId = 162, Level = LogLevel.Information, Message = "HTTP/2 origin connection to {Host}:{Port} failed with GOAWAY {Code}: {Reason}")]
    public static partial void Http2UpstreamConnectionError(ILogger logger, string host, int port, Interpose.Core.Http2.Http2ErrorCode code, string reason);

    [LoggerMessage(EventId = 163, Level = LogLevel.Debug, Message = "{Host}:{Port}: request {ExchangeId} was not processed by the HTTP/2 origin ({Reason}); retried on another stream (RFC 9113 §8.7)")]
    public static partial void Http2UpstreamRetry(ILogger logger, string host, int port, long exchangeId, string reason);

    [LoggerMessage(EventId = 166, Level = LogLevel.Debug, Message = "{Host}:{Port}: the reused origin connection of request {ExchangeId} failed before any response byte ({Reason}); {Method} is idempotent, so it is sent again (RFC 9110 §9.2.2)")]
    public static partial void IdempotentRetry(ILogger logger, string host, int port, long exchangeId, string method, string reason);

    [LoggerMessage(EventId = 167, Level = LogLevel.Error, Message = "HTTP/2 origin connection to {Host}:{Port} failed with an internal error (a bug in Interpose, not the origin's doing); its streams fail and it is closed")]
    public static partial void Http2UpstreamCrashed(ILogger logger, string host, int port, Exception exception);

    [LoggerMessage(EventId = 137, Level = LogLevel.Error, Message = "{Client}: HTTP/2 stream {StreamId} failed with an internal error (a bug in Interpose); the stream is reset with INTERNAL_ERROR")]
    public static partial void Http2StreamCrashed(ILogger logger, ClientConnection client, int streamId, Exception exception);

    [LoggerMessage(EventId = 164, Level = LogLevel.Information, Message = "HTTP/2 origin connection to {Host}:{Port} closed: {Reason}")]
    public static partial void Http2UpstreamClosed(ILogger logger, string host, int port, string reason);

    [LoggerMessage(EventId = 199, Level = LogLevel.Error, Message = "{Client}: unexpected failure; connection closed")]
    public static partial void SessionCrashed(ILogger logger, ClientConnection client, Exception exception);

    [LoggerMessage(EventId = 330, Level = LogLevel.Information, Message = "Intercepted {Method} {Url}: {Phase} paused until resumed or killed")]
    public static partial void InterceptPaused(ILogger logger, string method, string url, Intercept.InterceptPhase phase);

    [LoggerMessage(EventId = 333, Level = LogLevel.Warning, Message = "Intercepted {Method} {Url}: {Phase} not resumed within {TimeoutSeconds} s; answered 504")]
    public static partial void InterceptTimedOut(ILogger logger, string method, string url, Intercept.InterceptPhase phase, double timeoutSeconds);

    [LoggerMessage(EventId = 334, Level = LogLevel.Warning, Message = "Intercept: {Limit} exchanges already paused; {Method} {Url} passes without pausing")]
    public static partial void InterceptFull(ILogger logger, int limit, string method, string url);
}

/// <summary>The one-line-per-exchange flow log (category <c>Interpose.Flow</c>), as mitmdump prints.</summary>
internal static partial class FlowLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "{Client} {Method} {Url} -> {Status} {Size} {DurationMs:0.0}ms [{Protocols}]")]
    public static partial void Exchange(ILogger logger, string client, string method, string url, int status, string size, double durationMs, string protocols);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "{Client} {Method} {Url} -> error ({Phase}): {Reason} [{Protocols}]")]
    public static partial void Failed(ILogger logger, string client, string method, string url, ExchangePhase phase, string reason, string protocols);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "{Client} {Method} {Url} -> {Status} {Size} {DurationMs:0.0}ms [{Protocols}] [{Rules}]")]
    public static partial void ExchangeByRules(ILogger logger, string client, string method, string url, int status, string size, double durationMs, string protocols, string rules);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "{Client} {Method} {Url} -> killed: connection closed without an answer {DurationMs:0.0}ms [{Protocols}] [{Rules}]")]
    public static partial void Killed(ILogger logger, string client, string method, string url, double durationMs, string protocols, string rules);

    /// <summary>The exchange's line, as mitmdump prints it, ending with each side's protocol (<c>[h2 -> h1]</c>) and the
    /// rules that acted, if any; nothing is built when the flow log is off.</summary>
    public static void Log(ILogger logger, HttpExchange exchange, long responseBytes)
    {
        if (!logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        var request = exchange.Request;
        // Checked above: the arguments are only built when the flow log is on.
#pragma warning disable CA1873
        var url = request.Scheme + "://" + request.Authority + request.Path;
        if (exchange.Error is { } error)
        {
            Failed(logger, exchange.Client.ToString(), request.Method, url, error.Phase, error.Message, Protocols(exchange));
        }
        else if (exchange.IsKilled)
        {
            // A kill (block-list 444, or an addon's Kill) sends no response (even one the origin gave), but the exchange happened: say who ended it
            // ("-" when no rule did, an addon then).
            Killed(logger, exchange.Client.ToString(), request.Method, url, exchange.Timings.Total.TotalMilliseconds, Protocols(exchange), Rules.RulesAddon.Describe(exchange.TagsIfAny) ?? "-");
        }
        else if (exchange.Response is { } response && Rules.RulesAddon.Describe(exchange.TagsIfAny) is { } rules)
        {
            // The rules that acted (their tags), so that the log shows why an answer differs from the origin's.
            ExchangeByRules(logger, exchange.Client.ToString(), request.Method, url, response.StatusCode, FormatSize(responseBytes), exchange.Timings.Total.TotalMilliseconds, Protocols(exchange), rules);
        }
        else if (exchange.Response is { } response2)
        {
            Exchange(logger, exchange.Client.ToString(), request.Method, url, response2.StatusCode, FormatSize(responseBytes), exchange.Timings.Total.TotalMilliseconds, Protocols(exchange));
        }
#pragma warning restore CA1873
    }

    /// <summary>Each side's protocol, client first: <c>h2 -> h1</c>; <c>-</c> for an origin never reached (a synthetic
    /// answer or a failure before its response head).</summary>
    public static string Protocols(HttpExchange exchange) => exchange.ServerVersion is { } server
        ? ProtocolName(exchange.ClientVersion) + " -> " + ProtocolName(server)
        : ProtocolName(exchange.ClientVersion) + " -> -";

    /// <summary>The short name of an HTTP version, as ALPN spells the protocol (RFC 7301: h2; HTTP/1.0 kept apart).</summary>
    public static string ProtocolName(Version version) => version.Major switch
    {
        1 => version.Minor == 0 ? "h1.0" : "h1",
        2 => "h2",
        3 => "h3",
        _ => version.ToString(),
    };

    private static string FormatSize(long bytes) => bytes switch
    {
        < 1024 => bytes.ToString(CultureInfo.InvariantCulture) + "b",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + "k",
        _ => (bytes / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture) + "m",
    };
}
