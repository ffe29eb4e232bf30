using System.Net;

namespace Interpose.Core.Http;

/// <summary>
/// How a streamed response body reaches the client, from the origin's framing, the client's version and whether a
/// transform changes the body; and the fields that go with it.
/// </summary>
/// <param name="Raw">Bytes as the origin framed them (Content-Length or chunked passed through): the fast path.</param>
/// <param name="Rechunk">Re-framed as chunked after a transform (HTTP/1.1 client).</param>
/// <param name="CloseDelimited">Framed by closing the connection: the origin's body was close-delimited, or the
/// client is HTTP/1.0 and the body's length is not known in advance (RFC 9112 §6.1: no chunked to 1.0).</param>
/// <param name="Received">The origin's framing.</param>
public readonly record struct ResponseRelayPlan(bool Raw, bool Rechunk, bool CloseDelimited, BodyFraming Received)
{
    /// <summary>The origin's chunked framing is passed through untouched.</summary>
    public bool RawChunked => Raw && Received.Kind == BodyKind.Chunked;

    /// <summary>Plans the relay of a body framed <paramref name="received"/>.</summary>
    /// <param name="received">The response's framing from the origin (RFC 9112 §6.3).</param>
    /// <param name="clientVersion">The client's HTTP version.</param>
    /// <param name="transformed">A transform changes the body chunk by chunk.</param>
    /// <returns>The plan.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="clientVersion"/> is null.</exception>
    public static ResponseRelayPlan For(BodyFraming received, Version clientVersion, bool transformed)
    {
        ArgumentNullException.ThrowIfNull(clientVersion);
        var kind = received.Kind;
        var clientIs10 = clientVersion == HttpVersion.Version10;
        transformed &= kind != BodyKind.None;
        var closeDelimited = kind == BodyKind.CloseDelimited || (clientIs10 && (kind == BodyKind.Chunked || transformed));
        return new ResponseRelayPlan(
            Raw: !transformed && !(clientIs10 && kind == BodyKind.Chunked),
            Rechunk: transformed && !clientIs10,
            CloseDelimited: closeDelimited,
            Received: received);
    }

    /// <summary>
    /// Makes the response's fields describe the body as it will be sent: hop-by-hop fields out (Transfer-Encoding kept
    /// only when the chunked framing passes through), the origin's length fields dropped when the body is re-framed,
    /// <c>Transfer-Encoding: chunked</c> when re-chunked, and for a body relayed as the origin framed it, the framing
    /// fields a hook may have changed set back to what is sent (<see cref="ForwardingRules.FixRelayedFraming"/>): a
    /// wrong Content-Length would make the client read part of this body as the next response (RFC 9112 §6.3).
    /// </summary>
    /// <param name="headers">The response's fields, changed in place.</param>
    /// <exception cref="ArgumentNullException"><paramref name="headers"/> is null.</exception>
    public void PrepareHeaders(HttpHeaders headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        HopByHop.Remove(headers, keepUpgrade: false, keepTransferEncoding: RawChunked);
        if (!Raw || (CloseDelimited && Received.Kind == BodyKind.Chunked))
        {
            headers.Remove("Content-Length");
            headers.Remove("Transfer-Encoding");
        }
        else if (Received.Kind != BodyKind.None)
        {
            // A bodiless response (HEAD, 204, 304) keeps the origin's Content-Length: it describes the GET's body.
            ForwardingRules.FixRelayedFraming(headers, Received);
        }

        if (Rechunk)
        {
            headers.Set("Transfer-Encoding", "chunked");
        }
    }
}
