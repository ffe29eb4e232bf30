using Interpose.Core.Http;

namespace Interpose.Core.Filters;

/// <summary>
/// What the filter operators read from a flow. The flow store and the proxy adapt their own models to it; every
/// member is read at most a few times per evaluation and should be cheap (no decoding or copying on access).
/// </summary>
/// <remarks>
/// The properties that <see cref="FilterSqlPushDown"/> maps to columns (<see cref="Method"/>, <see cref="Host"/>,
/// <see cref="Url"/>, <see cref="StatusCode"/>) must be null exactly when the operator does not apply, as documented on
/// each, because the SQL side sees only the column and not the <see cref="Kind"/>.
/// </remarks>
public interface IFilterableFlow
{
    /// <summary>The kind of flow (<c>~http</c>, <c>~tcp</c>, <c>~udp</c>, <c>~dns</c>).</summary>
    FilterFlowKind Kind { get; }

    /// <summary>The request method as received (<c>~m</c>); null for flows that are not HTTP.</summary>
    string? Method { get; }

    /// <summary>
    /// The URL for <c>~u</c>: for HTTP, mitmproxy's <c>pretty_url</c>, the URL built from scheme, the Host header's host
    /// (else the request host), port and path with query, and the authority alone for CONNECT; for DNS the first
    /// question's name; null for other flows. It must contain the Host header's host when there is one (the SQL
    /// push-down of <c>~d</c> relies on it).
    /// </summary>
    string? Url { get; }

    /// <summary>The request's target host, without port or brackets (<c>~d</c>); null for flows that are not HTTP.
    /// <c>~d</c> also tries the host of the request's <c>Host</c> header (for HTTP/2, expose the <c>:authority</c>
    /// as a Host field).</summary>
    string? Host { get; }

    /// <summary>The request header fields in wire order and spelling (<c>~h</c>, <c>~hq</c>, <c>~t</c>, <c>~tq</c>);
    /// null when there are none to show.</summary>
    HttpHeaders? RequestHeaders { get; }

    /// <summary>The response header fields (<c>~h</c>, <c>~hs</c>, <c>~t</c>, <c>~ts</c>, <c>~a</c>); null without a
    /// response.</summary>
    HttpHeaders? ResponseHeaders { get; }

    /// <summary>The request body for <c>~b</c>/<c>~bq</c>, content-decoded when the caller can (mitmproxy decodes and
    /// falls back to the raw bytes); may be a recorded prefix. For DNS, the request as text.</summary>
    ReadOnlyMemory<byte> RequestBody { get; }

    /// <summary>The response body for <c>~b</c>/<c>~bs</c>, as <see cref="RequestBody"/>; empty without a response.</summary>
    ReadOnlyMemory<byte> ResponseBody { get; }

    /// <summary>Whether the flow has a response (<c>~s</c>; <c>~q</c> is its opposite for HTTP and DNS flows).</summary>
    bool HasResponse { get; }

    /// <summary>The response status code (<c>~c</c>); null when there is no HTTP response.</summary>
    int? StatusCode { get; }

    /// <summary>WebSocket messages of an HTTP flow, or the messages of a TCP/UDP flow; empty when none.</summary>
    IReadOnlyList<FilterMessage> Messages { get; }

    /// <summary>Whether the HTTP flow carries a WebSocket (<c>~websocket</c>).</summary>
    bool IsWebSocket { get; }

    /// <summary>Whether the flow ended in an error (<c>~e</c>).</summary>
    bool HasError { get; }

    /// <summary>The client's address as <c>ip:port</c> (mitmproxy's form, IPv6 without brackets: <c>::1:5000</c>) for
    /// <c>~src</c>; null when unknown.</summary>
    string? ClientAddress { get; }

    /// <summary>The server's address as <c>host:port</c> for <c>~dst</c>; null when there was no server connection.</summary>
    string? ServerAddress { get; }

    /// <summary>The marker (<c>~marked</c> when non-empty, <c>~marker</c>); null or empty when unmarked.</summary>
    string? Marker { get; }

    /// <summary>The user's comment on the flow (<c>~comment</c>); null or empty when none.</summary>
    string? Comment { get; }

    /// <summary>Whether the flow was replayed (<c>~replay</c>, <c>~replayq</c>, <c>~replays</c>).</summary>
    FilterReplayKind Replay { get; }
}
