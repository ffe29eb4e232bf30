using System.Globalization;
using Interpose.Core.Filters;
using Interpose.Core.Http;

namespace Interpose.Core.Flows;

/// <summary>An <see cref="HttpFlow"/> as the filter operators read it; bodies are content-decoded on first use, as
/// mitmproxy does, falling back to the recorded bytes when they cannot be decoded (a truncated prefix, zstd).</summary>
internal sealed class HttpFlowFilterView(HttpFlow flow) : IFilterableFlow
{
    private ReadOnlyMemory<byte>? _requestBody;
    private ReadOnlyMemory<byte>? _responseBody;
    private IReadOnlyList<FilterMessage>? _messages;

    public FilterFlowKind Kind => FilterFlowKind.Http;

    public string? Method => flow.Request.Method;

    public string? Url => PrettyUrl(flow.Request);

    public string? Host => flow.Request.Host;

    public HttpHeaders? RequestHeaders => flow.Request.Headers;

    public HttpHeaders? ResponseHeaders => flow.Response?.Headers;

    public ReadOnlyMemory<byte> RequestBody => _requestBody ??= Decoded(flow.Request);

    public ReadOnlyMemory<byte> ResponseBody => _responseBody ??= flow.Response is { } r ? Decoded(r) : ReadOnlyMemory<byte>.Empty;

    public bool HasResponse => flow.Response is not null;

    public int? StatusCode => flow.Response?.StatusCode;

    public IReadOnlyList<FilterMessage> Messages => _messages ??= WebSocketMessages(flow.WebSocket);

    // RFC 6455 §4.2.2: the server accepts the WebSocket handshake with a 101 and "Upgrade: websocket".
    public bool IsWebSocket => flow.Response is { StatusCode: 101 } r
        && string.Equals(r.Headers.Get("Upgrade"), "websocket", StringComparison.OrdinalIgnoreCase);

    public bool HasError => flow.Error is not null;

    public string? ClientAddress => flow.Client?.ToString();

    public string? ServerAddress => flow.Server?.ToString();

    public string? Marker => flow.Marker;

    public string? Comment => flow.Comment;

    public FilterReplayKind Replay => flow.Replay;

    /// <summary>mitmproxy's pretty_url: the Host header's host when present, the authority alone for CONNECT.</summary>
    private static string PrettyUrl(FlowRequest request)
    {
        if (request.Method == "CONNECT")
        {
            return request.Path;
        }

        if (request.Headers.Get("Host") is { Length: > 0 } hostHeader)
        {
            var host = hostHeader;
            var port = request.Port;
            var colon = host.LastIndexOf(':');
            if (colon > 0 && host.IndexOf(']', colon) < 0
                && int.TryParse(host.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                port = parsed;
                host = host[..colon];
            }

            return (request with { Host = host.Trim('[', ']'), Port = port }).Url;
        }

        return request.Url;
    }

    private static FilterMessage[] WebSocketMessages(FlowWebSocket? webSocket)
    {
        if (webSocket is null)
        {
            return [];
        }

        var messages = new FilterMessage[webSocket.Messages.Count];
        for (int i = 0; i < messages.Length; i++)
        {
            var m = webSocket.Messages[i];
            messages[i] = new FilterMessage(m.FromClient, m.Content);
        }

        return messages;
    }

    private static ReadOnlyMemory<byte> Decoded(FlowMessage message) =>
        ContentCoding.TryDecode(message.Body.Content, message.Headers.Get("Content-Encoding"), out var decoded) ? decoded : message.Body.Content;
}
