using System.Text.Json.Serialization;
using Interpose.Core.Http;

namespace Interpose.Core.Flows;

/// <summary>What a recorded request and response share: version, header fields, body and trailers.</summary>
/// <remarks>
/// <see cref="Headers"/> and <see cref="Trailers"/> are mutable collections for the codebase's header type; a flow owns
/// copies of them, and whoever holds a flow treats them as read-only.
/// </remarks>
public abstract record FlowMessage
{
    /// <summary>The HTTP version on the message's start line or negotiated (<c>HTTP/1.1</c>, <c>HTTP/2.0</c>).</summary>
    public required string HttpVersion { get; init; }

    /// <summary>The header fields in wire order, case and duplicates kept.</summary>
    [JsonConverter(typeof(HttpHeadersJsonConverter))]
    public required HttpHeaders Headers { get; init; }

    /// <summary>The body as it crossed the wire (content-encoded).</summary>
    public FlowBody Body { get; init; } = FlowBody.Empty;

    /// <summary>Trailer fields of a chunked body, when the peer sent some.</summary>
    [JsonConverter(typeof(HttpHeadersJsonConverter))]
    public HttpHeaders? Trailers { get; init; }
}
