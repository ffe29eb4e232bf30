using System.Globalization;
using System.Net;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Http;

namespace Interpose.Proxy.Rules;

/// <summary>
/// A live <see cref="HttpExchange"/> as the filter operators read it, at the moment it is made: before a response
/// exists it is a request (<c>~q</c>), after one it has both sides. Bodies are those in hand (buffered or set by a hook;
/// empty while a body streams), content-decoded on first use as <see cref="HttpFlowFilterView"/> does for recorded
/// flows. Make a new view after the exchange changed.
/// </summary>
internal sealed class ExchangeFilterView(HttpExchange exchange) : IFilterableFlow
{
    private ReadOnlyMemory<byte>? _requestBody;
    private ReadOnlyMemory<byte>? _responseBody;

    public FilterFlowKind Kind => FilterFlowKind.Http;

    public string? Method => exchange.Request.Method;

    public string? Url => PrettyUrl(exchange.Request);

    public string? Host => exchange.Request.Host;

    public HttpHeaders? RequestHeaders => exchange.Request.Headers;

    public HttpHeaders? ResponseHeaders => exchange.Response?.Headers;

    public ReadOnlyMemory<byte> RequestBody => _requestBody ??= Decoded(exchange.Request);

    public ReadOnlyMemory<byte> ResponseBody => _responseBody ??= exchange.Response is { } r ? Decoded(r) : ReadOnlyMemory<byte>.Empty;

    public bool HasResponse => exchange.Response is not null;

    public int? StatusCode => exchange.Response?.StatusCode;

    public IReadOnlyList<FilterMessage> Messages => [];

    // RFC 6455 §4.2.2: the server accepts the WebSocket handshake with a 101 and "Upgrade: websocket".
    public bool IsWebSocket => exchange.Response is { StatusCode: 101 } r
        && string.Equals(r.Headers.Get("Upgrade"), "websocket", StringComparison.OrdinalIgnoreCase);

    public bool HasError => exchange.Error is not null;

    public string? ClientAddress => exchange.Client.RemoteEndPoint is IPEndPoint ip
        ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address) + ":" + ip.Port.ToString(CultureInfo.InvariantCulture)
        : null;

    public string? ServerAddress => exchange.Server?.ToString();

    public string? Marker => null;

    public string? Comment => null;

    // Set before the request hooks run (the replaying addon comes first), as mitmproxy's is_replay: ~replayq and
    // ~replays work in rules and scripts as in a saved flow.
    public FilterReplayKind Replay => FlowRecorder.ReplayKind(exchange);

    /// <summary>
    /// mitmproxy's <c>pretty_url</c>: scheme, the Host header's host and port when there is one (else the request's),
    /// path and query; the port is left out when it is the scheme's default.
    /// </summary>
    public static string PrettyUrl(HttpRequest request)
    {
        if (request.Method == "CONNECT")
        {
            return request.Authority;
        }

        var host = request.Host;
        var port = request.Port;
        if (request.Headers.Get("Host") is { Length: > 0 } hostHeader)
        {
            host = hostHeader;
            var colon = hostHeader.LastIndexOf(':');
            if (colon > 0 && hostHeader.IndexOf(']', colon) < 0
                && int.TryParse(hostHeader.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                port = parsed;
                host = hostHeader[..colon];
            }

            host = host.Trim('[', ']');
        }

        var bracketed = host.Contains(':', StringComparison.Ordinal) ? "[" + host + "]" : host;
        var defaultPort = request.Scheme == "https" ? 443 : 80;
        var authority = port == defaultPort ? bracketed : bracketed + ":" + port.ToString(CultureInfo.InvariantCulture);
        // As a recorded flow's URL, so that a rule and a listing of the saved flows agree on what ~u sees.
        return request.Scheme + "://" + authority + FlowRequest.UrlPath(request.Path);
    }

    private static ReadOnlyMemory<byte> Decoded(HttpMessage message) =>
        !message.HasBody ? ReadOnlyMemory<byte>.Empty
        : ContentCoding.TryDecode(message.Body, message.Headers.Get("Content-Encoding"), out var decoded) ? decoded : message.Body;
}
