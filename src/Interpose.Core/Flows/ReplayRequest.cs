using System.Globalization;
using System.Text;
using Interpose.Core.Http;

namespace Interpose.Core.Flows;

/// <summary>
/// A recorded request as HTTP/1.1 bytes for a proxy (absolute-form target), for client replay: the header fields in
/// recorded order and case, the body as recorded. The proxy that receives it forwards it as it forwarded the original.
/// </summary>
internal static class ReplayRequest
{
    /// <summary>
    /// The request's bytes: <c>METHOD scheme://authority/path HTTP/1.1</c>, the recorded fields without the
    /// connection-scoped ones (the proxy drops them before forwarding anyway: RFC 9110 §7.6.1), <c>Host</c> first when
    /// the recording has none (an HTTP/2 request carries <c>:authority</c> instead: RFC 9113 §8.3.1), a
    /// <c>Content-Length</c> when a body has no framing field, and <c>Connection: close</c> last, so that the proxy
    /// closes after the one response. A chunked body is sent as one chunk with the recorded trailers.
    /// </summary>
    /// <param name="request">The recorded request; its body must be whole (<see cref="FlowBody.IsWhole"/>).</param>
    /// <returns>The bytes.</returns>
    /// <exception cref="ArgumentException">The body was not recorded whole (cut at the cap, or ended early), the method
    /// is not a token, or the URL holds whitespace, control or non-ASCII characters.</exception>
    public static byte[] Serialize(FlowRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Body.IsTruncated)
        {
            throw new ArgumentException($"the request body was recorded cut ({request.Body.Content.Length} of {request.Body.Length} bytes)", nameof(request));
        }

        if (request.Body.IsIncomplete)
        {
            // The exchange failed mid-body: sent with the framing it had, the part would reach the origin as a whole request.
            throw new ArgumentException($"the request body was recorded cut (it ended after {request.Body.Length} bytes: the exchange failed mid-body)", nameof(request));
        }

        // RFC 9110 §9.1 (method = token) and RFC 9112 §3.2 (no whitespace or CTL in a request-target): a recording that
        // breaks them (an imported file) would end the request line early and send a second request of its choosing.
        var url = request.Url;
        if (!HttpChars.IsToken(request.Method) || !Http1Parser.IsValidTargetText(url))
        {
            throw new ArgumentException("the request's method is not a token or its URL holds whitespace, control or non-ASCII characters", nameof(request));
        }

        var head = new StringBuilder(256);
        head.Append(request.Method).Append(' ').Append(url).Append(" HTTP/1.1\r\n");
        var headers = request.Headers;
        if (!headers.Contains("Host"))
        {
            head.Append("Host: ").Append(Authority.Format(request.Scheme, request.Host, request.Port)).Append("\r\n");
        }

        var chunked = false;
        var framed = false;
        foreach (var field in headers)
        {
            if (IsConnectionScoped(field.Name))
            {
                continue;
            }

            if (field.Name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                // RFC 9112 §6.1: chunked is the final coding when present; the recording holds the body without it.
                chunked |= field.Value.TrimEnd().EndsWith("chunked", StringComparison.OrdinalIgnoreCase);
                framed = true;
            }
            else if (field.Name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                framed = true;
            }

            head.Append(field.Name).Append(": ").Append(field.Value).Append("\r\n");
        }

        var body = request.Body.Content;
        if (!framed && !body.IsEmpty)
        {
            // RFC 9112 §6.3: without a framing field a request has no body.
            head.Append("Content-Length: ").Append(body.Length.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        }

        head.Append("Connection: close\r\n\r\n");
        using var bytes = new MemoryStream(head.Length + body.Length + 64);
        bytes.Write(Encoding.Latin1.GetBytes(head.ToString()));
        if (!chunked)
        {
            bytes.Write(body.Span);
            return bytes.ToArray();
        }

        // RFC 9112 §7.1: chunk = size CRLF data CRLF; last-chunk; trailer section; CRLF.
        if (!body.IsEmpty)
        {
            bytes.Write(Encoding.Latin1.GetBytes(body.Length.ToString("x", CultureInfo.InvariantCulture) + "\r\n"));
            bytes.Write(body.Span);
            bytes.Write("\r\n"u8);
        }

        var tail = new StringBuilder("0\r\n");
        foreach (var trailer in (IEnumerable<HttpHeader>?)request.Trailers ?? [])
        {
            tail.Append(trailer.Name).Append(": ").Append(trailer.Value).Append("\r\n");
        }

        bytes.Write(Encoding.Latin1.GetBytes(tail.Append("\r\n").ToString()));
        return bytes.ToArray();
    }

    // RFC 9110 §7.6.1: Connection and the fields it names are for one connection; Proxy-Connection and Keep-Alive are
    // the old spellings a proxy drops too.
    private static bool IsConnectionScoped(string name) =>
        name.Equals("Connection", StringComparison.OrdinalIgnoreCase) || name.Equals("Proxy-Connection", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Keep-Alive", StringComparison.OrdinalIgnoreCase);
}
