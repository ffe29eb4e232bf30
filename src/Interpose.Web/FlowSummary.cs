using System.Globalization;
using Interpose.Core.Filters;
using Interpose.Core.Flows;

namespace Interpose.Web;

/// <summary>One row of the flow list: what the list shows, and nothing it does not (bodies stay in the store).</summary>
public sealed record FlowSummary
{
    /// <summary>The flow's id.</summary>
    public required Guid Id { get; init; }

    /// <summary>When it started, Unix milliseconds.</summary>
    public required long StartedAt { get; init; }

    /// <summary>http or tunnel.</summary>
    public required string Kind { get; init; }

    /// <summary>The request method; CONNECT for a tunnel.</summary>
    public required string Method { get; init; }

    /// <summary>The request URL (a tunnel's host:port).</summary>
    public required string Url { get; init; }

    /// <summary>The response status; null without a response.</summary>
    public int? Status { get; init; }

    /// <summary>The response's media type without parameters.</summary>
    public string? Type { get; init; }

    /// <summary>The response body's length as it crossed the wire (a tunnel's bytes both ways).</summary>
    public long Size { get; init; }

    /// <summary>From the start to the last byte, milliseconds; null when unknown.</summary>
    public double? DurationMs { get; init; }

    /// <summary>The client side's protocol (1.1, 2).</summary>
    public string? ClientProtocol { get; init; }

    /// <summary>The origin side's protocol; null when no origin was reached.</summary>
    public string? ServerProtocol { get; init; }

    /// <summary>Whether the client spoke TLS to the proxy (intercepted HTTPS).</summary>
    public bool Tls { get; init; }

    /// <summary>Whether TLS was passed through untouched (a tunnel of kind tls-passthrough).</summary>
    public bool Passthrough { get; init; }

    /// <summary>How a tunnel's bytes were relayed (<c>tls-passthrough</c>, <c>raw</c>); null for HTTP.</summary>
    public string? TunnelKind { get; init; }

    /// <summary>mitmproxy's replay marker: <c>request</c> when the request was sent again (client replay,
    /// <c>~replayq</c>), <c>response</c> when the answer came from a recording (server replay, <c>~replays</c>); null
    /// otherwise.</summary>
    public string? Replay { get; init; }

    /// <summary>The error's phase and reason, when the flow failed.</summary>
    public string? Error { get; init; }

    /// <summary>The marker text; null when unmarked.</summary>
    public string? Marker { get; init; }

    /// <summary>The comment; null when none.</summary>
    public string? Comment { get; init; }

    /// <summary>Whether the highlight filter matches it.</summary>
    public bool Highlight { get; init; }

    /// <summary>The row for <paramref name="flow"/>.</summary>
    /// <param name="flow">The flow.</param>
    /// <param name="highlight">Whether the highlight filter matches it.</param>
    /// <returns>The row.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    public static FlowSummary From(Flow flow, bool highlight = false)
    {
        ArgumentNullException.ThrowIfNull(flow);
        var error = flow.Error is { } e ? e.Phase + ": " + e.Message : null;
        if (flow is HttpFlow http)
        {
            var type = http.Response?.Headers.Get("Content-Type");
            var semicolon = type?.IndexOf(';', StringComparison.Ordinal) ?? -1;
            return new FlowSummary
            {
                Id = flow.Id, StartedAt = flow.StartedAt.ToUnixTimeMilliseconds(), Kind = "http",
                Method = http.Request.Method, Url = http.Request.Url, Status = http.Response?.StatusCode,
                Type = semicolon >= 0 ? type![..semicolon].Trim() : type,
                Size = http.Response?.Body.Length ?? 0, DurationMs = http.Timings.Done,
                ClientProtocol = Protocol(http.ClientHttpVersion), ServerProtocol = http.ServerHttpVersion is { } v ? Protocol(v) : null,
                Tls = http.ClientTls is not null || http.Request.Scheme == "https",
                Error = error, Marker = flow.Marker, Comment = flow.Comment, Highlight = highlight, Replay = ReplayName(flow.Replay),
            };
        }

        var tunnel = (TunnelFlow)flow;
        return new FlowSummary
        {
            Id = flow.Id, StartedAt = flow.StartedAt.ToUnixTimeMilliseconds(), Kind = "tunnel", Method = "CONNECT",
            Url = tunnel.Host + ":" + tunnel.Port.ToString(CultureInfo.InvariantCulture),
            Size = tunnel.BytesFromClient + tunnel.BytesFromServer, DurationMs = tunnel.DurationMs,
            Tls = tunnel.Kind == Core.Flows.TunnelKind.TlsPassthrough, Passthrough = tunnel.Kind == Core.Flows.TunnelKind.TlsPassthrough,
            TunnelKind = tunnel.Kind.Name(), Error = error, Marker = flow.Marker, Comment = flow.Comment, Highlight = highlight,
            Replay = ReplayName(flow.Replay),
        };
    }

    private static string? ReplayName(FilterReplayKind replay) => replay switch
    {
        FilterReplayKind.Request => "request",
        FilterReplayKind.Response => "response",
        _ => null,
    };

    private static string Protocol(string version) => version switch
    {
        "HTTP/2" or "HTTP/2.0" or "2" or "2.0" => "2",
        "HTTP/1.0" or "1.0" => "1.0",
        "HTTP/3" or "3" => "3",
        _ => "1.1",
    };
}
