namespace Interpose.Core.Http;

/// <summary>Decides how a message body is delimited (RFC 9112 §6.3), rejecting every ambiguous combination.</summary>
public static class MessageFraming
{
    private const int MaxContentLengthDigits = 18; // 999,999,999,999,999,999 < long.MaxValue; no overflow possible.

    /// <summary>Determines the body framing of a request.</summary>
    /// <param name="head">The parsed request head.</param>
    /// <returns><see cref="BodyKind.Chunked"/>, <see cref="BodyKind.ContentLength"/> or <see cref="BodyKind.None"/>; never close-delimited.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="head"/> is null.</exception>
    /// <exception cref="HttpProtocolException">Content-Length with Transfer-Encoding, Transfer-Encoding in HTTP/1.0, a final coding
    /// other than chunked (400), an unknown coding (501), or an invalid or conflicting Content-Length.</exception>
    public static BodyFraming ForRequest(HttpRequestHead head)
    {
        ArgumentNullException.ThrowIfNull(head);
        HttpHeaders headers = head.Headers;
        bool hasTe = headers.Contains("Transfer-Encoding");
        bool hasCl = headers.Contains("Content-Length");
        if (hasTe)
        {
            CheckTransferEncodingAllowed(head.Version, hasCl, inResponse: false);

            // RFC 9112 §6.3 item 4: "If a Transfer-Encoding header field is present in a request and the chunked
            // transfer coding is not the final encoding, the message body length cannot be determined reliably;
            // the server MUST respond with the 400 (Bad Request) status code and then close the connection."
            if (!EndsWithChunked(headers, inResponse: false))
            {
                Rejections.Throw(RejectionReason.TransferEncodingNotChunkedLast);
            }

            return BodyFraming.Chunked;
        }

        if (hasCl)
        {
            long length = ParseContentLength(headers, inResponse: false);
            return new BodyFraming(BodyKind.ContentLength, length);
        }

        // RFC 9112 §6.3 item 7: a request with neither has a zero-length body.
        return BodyFraming.None;
    }

    /// <summary>Determines the body framing of a response to a request with method <paramref name="requestMethod"/>.</summary>
    /// <param name="head">The parsed response head.</param>
    /// <param name="requestMethod">The method of the request this answers (HEAD and CONNECT matter).</param>
    /// <returns>The framing; <see cref="BodyKind.CloseDelimited"/> when nothing else delimits the body.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="HttpProtocolException">Content-Length with Transfer-Encoding, Transfer-Encoding in HTTP/1.0, chunked applied
    /// twice or not last among several, or an invalid or conflicting Content-Length (all answered with 502).</exception>
    public static BodyFraming ForResponse(HttpResponseHead head, string requestMethod)
    {
        ArgumentNullException.ThrowIfNull(head);
        ArgumentNullException.ThrowIfNull(requestMethod);
        int status = head.StatusCode;

        // RFC 9112 §6.3 item 1: responses to HEAD, 1xx, 204 and 304 end at the end of the header section,
        // whatever framing fields they carry.
        if (status is < 200 or 204 or 304 || string.Equals(requestMethod, "HEAD", StringComparison.Ordinal))
        {
            return BodyFraming.None;
        }

        // RFC 9112 §6.3 item 2: a 2xx response to CONNECT switches to a tunnel; framing fields are ignored.
        if (status < 300 && string.Equals(requestMethod, "CONNECT", StringComparison.Ordinal))
        {
            return BodyFraming.None;
        }

        HttpHeaders headers = head.Headers;
        bool hasTe = headers.Contains("Transfer-Encoding");
        bool hasCl = headers.Contains("Content-Length");
        if (hasTe)
        {
            CheckTransferEncodingAllowed(head.Version, hasCl, inResponse: true);

            // RFC 9112 §6.3 item 4: in a response, chunked last means chunked; otherwise the body runs to close.
            return EndsWithChunked(headers, inResponse: true) ? BodyFraming.Chunked : BodyFraming.CloseDelimited;
        }

        if (hasCl)
        {
            // RFC 9112 §6.3 item 5: an invalid Content-Length in a response: a proxy MUST discard it, send 502 and close.
            long length = ParseContentLength(headers, inResponse: true);
            return new BodyFraming(BodyKind.ContentLength, length);
        }

        // RFC 9112 §6.3 item 8: otherwise the response body is delimited by the server closing the connection.
        return BodyFraming.CloseDelimited;
    }

    private static void CheckTransferEncodingAllowed(Version version, bool hasContentLength, bool inResponse)
    {
        // RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a Transfer-Encoding header
        // field MUST treat the message as if the framing is faulty, even if a Content-Length is present".
        if (version.Major == 1 && version.Minor == 0)
        {
            Rejections.Throw(RejectionReason.TransferEncodingInHttp10, inResponse);
        }

        // RFC 9112 §6.1: a message with both "ought to be handled as an error"; §6.3 item 3 lets a recipient
        // prefer Transfer-Encoding, but any peer that prefers Content-Length would then desync. Interpose rejects
        // both requests (400) and responses (502) - the CL.TE / TE.CL smuggling vectors.
        if (hasContentLength)
        {
            Rejections.Throw(RejectionReason.ContentLengthWithTransferEncoding, inResponse);
        }
    }

    /// <summary>Checks the combined Transfer-Encoding list and reports whether chunked is its final coding.</summary>
    private static bool EndsWithChunked(HttpHeaders headers, bool inResponse)
    {
        int codings = 0;
        bool chunkedSeen = false;
        bool lastIsChunked = false;
        foreach (HttpHeader h in headers)
        {
            if (!string.Equals(h.Name, "Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            // RFC 9110 §5.3: repeated field lines combine into one comma-separated list, in order.
            // RFC 9110 §5.6.1: elements are OWS-trimmed and empty elements ignored.
            foreach (ReadOnlySpan<char> coding in HttpChars.EnumerateList(h.Value))
            {
                codings++;

                // RFC 9112 §7: transfer-coding = token *( OWS ";" OWS transfer-parameter ). Interpose accepts no
                // parameters (none are registered for the codings it knows) and no quoted or odd bytes.
                if (!IsToken(coding))
                {
                    Rejections.Throw(RejectionReason.InvalidTransferEncoding, inResponse);
                }

                // RFC 9112 §7: transfer-coding names are case-insensitive, so "Chunked" is chunked.
                bool isChunked = coding.Equals("chunked", StringComparison.OrdinalIgnoreCase);
                if (isChunked)
                {
                    // RFC 9112 §6.1: "A sender MUST NOT apply the chunked transfer coding more than once".
                    if (chunkedSeen)
                    {
                        Rejections.Throw(RejectionReason.InvalidTransferEncoding, inResponse);
                    }

                    chunkedSeen = true;
                }
                else if (!inResponse && !IsKnownCoding(coding))
                {
                    // RFC 9112 §6.1: "A server that receives a request message with a transfer coding it does not
                    // understand SHOULD respond with 501". "identity" is no longer registered and lands here too.
                    Rejections.Throw(RejectionReason.UnsupportedTransferCoding);
                }
                else if (chunkedSeen && !inResponse)
                {
                    // Chunked followed by another coding: chunked is not the final coding (§6.3 item 4: 400).
                    // A response like that is close-delimited (same item), which the caller's result says.
                    Rejections.Throw(RejectionReason.TransferEncodingNotChunkedLast);
                }

                lastIsChunked = isChunked;
            }
        }

        if (codings == 0)
        {
            Rejections.Throw(RejectionReason.InvalidTransferEncoding, inResponse);
        }

        return lastIsChunked;
    }

    private static bool IsKnownCoding(ReadOnlySpan<char> coding) =>
        coding.Equals("gzip", StringComparison.OrdinalIgnoreCase)
        || coding.Equals("x-gzip", StringComparison.OrdinalIgnoreCase)
        || coding.Equals("deflate", StringComparison.OrdinalIgnoreCase)
        || coding.Equals("compress", StringComparison.OrdinalIgnoreCase)
        || coding.Equals("x-compress", StringComparison.OrdinalIgnoreCase);

    private static bool IsToken(ReadOnlySpan<char> s)
    {
        foreach (char c in s)
        {
            if (!HttpChars.IsTokenChar(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The Content-Length of <paramref name="headers"/>, or -1 when there is none.</summary>
    /// <param name="headers">The header (or HTTP/2 field) section.</param>
    /// <param name="inResponse">Whether the section is a response's (the rejection is then a 502).</param>
    /// <returns>The length; a list of identical values is that value.</returns>
    /// <exception cref="HttpProtocolException">An invalid value, or values that differ.</exception>
    internal static long ParseContentLength(HttpHeaders headers, bool inResponse)
    {
        long result = -1;
        foreach (HttpHeader h in headers)
        {
            if (!string.Equals(h.Name, "Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            // RFC 9110 §8.6 / RFC 9112 §6.3 item 5: a list of identical values ("5, 5" or two "5" lines) MAY be
            // accepted as that value; differing values are unrecoverable. An empty value is invalid.
            bool any = false;
            foreach (ReadOnlySpan<char> element in HttpChars.EnumerateList(h.Value))
            {
                any = true;
                long value = ParseDecimal(element, inResponse);
                if (result >= 0 && value != result)
                {
                    Rejections.Throw(RejectionReason.ConflictingContentLength, inResponse);
                }

                result = value;
            }

            if (!any)
            {
                Rejections.Throw(RejectionReason.InvalidContentLength, inResponse);
            }
        }

        return result;
    }

    private static long ParseDecimal(ReadOnlySpan<char> s, bool inResponse)
    {
        // RFC 9110 §8.6: Content-Length = 1*DIGIT. Interpose also rejects leading zeros ("0|[1-9][0-9]*", as
        // mitmproxy's validate.py does) since some parsers read them as octal, and caps digits so it cannot overflow.
        if (s.IsEmpty || s.Length > MaxContentLengthDigits || (s[0] == '0' && s.Length > 1))
        {
            Rejections.Throw(RejectionReason.InvalidContentLength, inResponse);
        }

        long value = 0;
        foreach (char c in s)
        {
            if (!char.IsAsciiDigit(c))
            {
                Rejections.Throw(RejectionReason.InvalidContentLength, inResponse);
            }

            value = (value * 10) + (c - '0');
        }

        return value;
    }
}
