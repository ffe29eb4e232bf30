using System.Globalization;
using System.Net;

namespace Interpose.Core.Http;

/// <summary>
/// The spec wrapper's rules for a message a proxy forwards: what it must remove, add or re-frame after the user's
/// hooks changed whatever they changed (RFC 9110 §7.6, RFC 9112 §6 and §9). Pure functions over heads and fields.
/// </summary>
public static class ForwardingRules
{
    private const string ContentLength = "Content-Length";
    private const string TransferEncoding = "Transfer-Encoding";

    /// <summary>
    /// Makes a forwarded request's fields true to the body that will really be sent: hop-by-hop fields out
    /// (RFC 9110 §7.6.1), then Content-Length for a body in hand, <c>chunked</c> for a streamed body whose length a
    /// transform may change, or the client's own chunked framing passed through untouched.
    /// </summary>
    /// <param name="headers">The request's fields, changed in place.</param>
    /// <param name="upgrade">The client asked to switch protocols (RFC 9110 §7.8): Upgrade is kept.</param>
    /// <param name="received">How the client framed the body (for a body relayed as received, the fields are made to match it).</param>
    /// <param name="streamed">The body is still to be read from the client and is relayed as it arrives.</param>
    /// <param name="transformed">A transform changes the streamed body chunk by chunk.</param>
    /// <param name="bodyInHand">The length of a body held in memory (buffered or set by a hook), or null.</param>
    /// <returns>How the body leaves.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="headers"/> is null.</exception>
    public static RequestBodyRelay PrepareRequest(HttpHeaders headers, bool upgrade, BodyFraming received, bool streamed, bool transformed, long? bodyInHand)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var rawChunked = streamed && received.Kind == BodyKind.Chunked && !transformed;
        HopByHop.Remove(headers, keepUpgrade: upgrade, keepTransferEncoding: rawChunked);
        if (bodyInHand is { } length)
        {
            // RFC 9112 §6.2: a body in hand has a known length; it replaces whatever framing the client used.
            headers.Remove(TransferEncoding);
            headers.Set(ContentLength, length.ToString(CultureInfo.InvariantCulture));
            return RequestBodyRelay.InHand;
        }

        if (streamed && transformed)
        {
            // RFC 9112 §6.1: the transform may change the length, so the origin gets chunked (an HTTP/1.1 feature).
            headers.Remove(ContentLength);
            headers.Set(TransferEncoding, "chunked");
            return RequestBodyRelay.Rechunked;
        }

        // The body leaves as the client framed it (or there is none): whatever a hook set, the framing fields describe
        // those bytes, or the origin would read part of the body as a next request (smuggling through a hook).
        FixRelayedFraming(headers, received);
        return rawChunked ? RequestBodyRelay.RawChunked : streamed ? RequestBodyRelay.Raw : RequestBodyRelay.None;
    }

    /// <summary>
    /// Makes the framing fields of a message whose body is relayed as received say what is really sent, whatever a hook
    /// did to them: exactly the received Content-Length (RFC 9112 §6.2); for a chunked body a Transfer-Encoding and no
    /// Content-Length (§6.3 item 3: a sender MUST NOT send Content-Length with Transfer-Encoding); for a message
    /// without a body or with a close-delimited one, no Content-Length. Allocates only when it has something to fix.
    /// </summary>
    /// <param name="headers">The message's fields (hop-by-hop fields already removed), changed in place.</param>
    /// <param name="received">The body's framing as received.</param>
    /// <exception cref="ArgumentNullException"><paramref name="headers"/> is null.</exception>
    public static void FixRelayedFraming(HttpHeaders headers, BodyFraming received)
    {
        ArgumentNullException.ThrowIfNull(headers);
        if (received.Kind == BodyKind.ContentLength)
        {
            var count = 0;
            var same = true;
            foreach (HttpHeader h in headers)
            {
                if (string.Equals(h.Name, ContentLength, StringComparison.OrdinalIgnoreCase))
                {
                    count++;
                    same &= long.TryParse(h.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value == received.ContentLength;
                }
            }

            if (count != 1 || !same)
            {
                headers.Set(ContentLength, received.ContentLength.ToString(CultureInfo.InvariantCulture));
            }

            return;
        }

        headers.Remove(ContentLength);
        if (received.Kind == BodyKind.Chunked && !headers.Contains(TransferEncoding))
        {
            headers.Add(TransferEncoding, "chunked");
        }
    }

    /// <summary>
    /// Frames a response whose whole body is in memory (synthetic, buffered or replaced): hop-by-hop fields out, a
    /// fresh Content-Length when the response may have a body, none where RFC 9110 §8.6 forbids it.
    /// </summary>
    /// <param name="headers">The response's fields, changed in place.</param>
    /// <param name="method">The request's method (HEAD responses have no body, RFC 9110 §9.3.2).</param>
    /// <param name="status">The status code.</param>
    /// <param name="bodyLength">The body's length.</param>
    /// <returns>Whether the body is sent (false for HEAD, 1xx, 204 and 304, RFC 9112 §6.3 item 1).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="headers"/> is null.</exception>
    public static bool PrepareWholeResponse(HttpHeaders headers, string method, int status, long bodyLength)
    {
        ArgumentNullException.ThrowIfNull(headers);
        HopByHop.Remove(headers, keepUpgrade: false, keepTransferEncoding: false);
        var bodyAllowed = ResponseMayHaveContent(method, status);
        if (bodyAllowed)
        {
            headers.Set(ContentLength, bodyLength.ToString(CultureInfo.InvariantCulture));
        }
        else if (status is 204 || status < 200)
        {
            // RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response with a status code
            // of 1xx (Informational) or 204 (No Content)". HEAD and 304 keep the origin's, which describes the GET.
            headers.Remove(ContentLength);
        }

        return bodyAllowed;
    }

    /// <summary>
    /// Whether a response may carry content: RFC 9112 §6.3 item 1, a response to HEAD (RFC 9110 §9.3.2) and a 1xx, 204
    /// (§15.3.5) or 304 (§15.4.5) response end with their header section, whatever framing fields they hold.
    /// </summary>
    /// <param name="method">The request's method.</param>
    /// <param name="status">The response's status code.</param>
    /// <returns><see langword="false"/> for HEAD, 1xx, 204 and 304.</returns>
    public static bool ResponseMayHaveContent(string method, int status) =>
        method != "HEAD" && status is >= 200 and not (204 or 304);

    /// <summary>
    /// Says in the response how the client connection goes on: RFC 9112 §9.6, "close" when the proxy will close;
    /// §9.3 and C.2.2, an HTTP/1.0 client keeps the connection only when told "keep-alive".
    /// </summary>
    /// <param name="headers">The response's fields (hop-by-hop fields already removed).</param>
    /// <param name="clientVersion">The client's HTTP version.</param>
    /// <param name="keepAlive">Whether the proxy keeps the client connection after this response.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static void SetConnection(HttpHeaders headers, Version clientVersion, bool keepAlive)
    {
        ArgumentNullException.ThrowIfNull(headers);
        if (!keepAlive)
        {
            headers.Set("Connection", "close");
        }
        else if (clientVersion == HttpVersion.Version10)
        {
            headers.Set("Connection", "keep-alive");
        }
    }

    /// <summary>The Via field value this proxy adds (RFC 9110 §7.6.3): the received protocol version and a pseudonym.</summary>
    /// <param name="received">The version of the message as received.</param>
    /// <returns>"1.0 interpose" or "1.1 interpose".</returns>
    public static string Via(Version received) =>
        received == HttpVersion.Version10 ? "1.0 interpose" : "1.1 interpose";

    /// <summary>
    /// Whether an interim response is relayed to the client: RFC 9110 §15.2, a proxy forwards 1xx responses, except
    /// to an HTTP/1.0 client, which cannot read them; 101 is not interim (it ends the exchange's HTTP part).
    /// </summary>
    /// <param name="status">The response's status code.</param>
    /// <param name="clientVersion">The client's HTTP version.</param>
    /// <returns><see langword="true"/> to relay it.</returns>
    public static bool ForwardInterim(int status, Version clientVersion) =>
        IsInterim(status) && clientVersion != HttpVersion.Version10;

    /// <summary>
    /// Whether a request method is idempotent (RFC 9110 §9.2.2: PUT, DELETE and the safe methods GET, HEAD, OPTIONS and
    /// TRACE), so that a proxy may send it again after a connection failure before any of the response arrived ("A proxy
    /// MUST NOT automatically retry non-idempotent requests"). Methods are case-sensitive (RFC 9110 §9.1): "get" is an
    /// unknown method, not GET, and is not retried.
    /// </summary>
    /// <param name="method">The request method as sent.</param>
    /// <returns><see langword="true"/> for the six idempotent methods of RFC 9110.</returns>
    public static bool IsIdempotent(string method) =>
        method is "GET" or "HEAD" or "OPTIONS" or "TRACE" or "PUT" or "DELETE";

    /// <summary>Whether a status is an interim (1xx) response other than 101 Switching Protocols (RFC 9110 §15.2).</summary>
    /// <param name="status">The status code.</param>
    /// <returns><see langword="true"/> for 100, 102, 103 and the other 1xx but 101.</returns>
    public static bool IsInterim(int status) => status is >= 100 and < 200 and not 101;
}
