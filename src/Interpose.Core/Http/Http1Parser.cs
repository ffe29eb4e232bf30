using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Text;

namespace Interpose.Core.Http;

/// <summary>
/// Strict HTTP/1.1 head codec (RFC 9112). Parsing is a pure function of the bytes: it either finds a complete,
/// valid head and reports where it ends, reports "need more" without consuming, or throws
/// <see cref="HttpProtocolException"/>. Every search is bounded by <see cref="Http1Limits"/>, so an attacker
/// cannot make it scan more than the limits allow.
/// </summary>
public static partial class Http1Parser
{
    /// <summary>
    /// Empty lines skipped before a request line. RFC 9112 §2.2: a server SHOULD ignore at least one empty line
    /// received before the request-line; 4 covers clients that send a stray CRLF after a POST body while
    /// keeping the skip bounded.
    /// </summary>
    public const int MaxLeadingEmptyLines = 4;

    private const int HttpVersionLength = 8; // "HTTP/1.1"

    /// <summary>Room for fields the proxy or a hook adds to a parsed head (Via, Content-Length) without regrowing.</summary>
    private const int SpareFieldCapacity = 2;

    // RFC 9110 §5.6.2 tchar.
    private static readonly SearchValues<byte> TokenBytes =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    // RFC 9110 §5.5: field-value bytes other than VCHAR / obs-text / SP / HTAB are CTLs (and DEL): invalid.
    private static readonly SearchValues<byte> InvalidFieldValueBytes = SearchValues.Create(
    [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x7F,
    ]);

    /// <summary>Parses a request head (request line and header section) from the start of <paramref name="buffer"/>.</summary>
    /// <param name="buffer">Bytes received so far; not consumed by this call.</param>
    /// <param name="limits">The caps to enforce.</param>
    /// <param name="head">The parsed head when the method returns <see langword="true"/>.</param>
    /// <param name="consumed">Just past the CRLF that ends the header section; <c>buffer.Start</c> when incomplete.</param>
    /// <returns><see langword="true"/> when a complete head was parsed; <see langword="false"/> when more bytes are needed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="limits"/> is null.</exception>
    /// <exception cref="HttpProtocolException">The bytes are malformed or exceed a limit, even if the head is not complete yet.</exception>
    public static bool TryParseRequestHead(in ReadOnlySequence<byte> buffer, Http1Limits limits, [NotNullWhen(true)] out HttpRequestHead? head, out SequencePosition consumed)
    {
        var scan = Http1HeadScan.ForOneHead();
        return TryParseRequestHead(buffer, limits, ref scan, out head, out consumed);
    }

    /// <summary>Parses a request head, resuming the scan where the previous incomplete attempt on this buffer stopped.</summary>
    /// <param name="buffer">Bytes received so far, starting at the same byte as on the previous attempt; not consumed.</param>
    /// <param name="limits">The caps to enforce.</param>
    /// <param name="scan">Scan progress, kept by the caller between attempts; reset when a head is returned.</param>
    /// <param name="head">The parsed head when the method returns <see langword="true"/>.</param>
    /// <param name="consumed">Just past the CRLF that ends the header section; <c>buffer.Start</c> when incomplete.</param>
    /// <returns><see langword="true"/> when a complete head was parsed; <see langword="false"/> when more bytes are needed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="limits"/> is null.</exception>
    /// <exception cref="HttpProtocolException">The bytes are malformed or exceed a limit, even if the head is not complete yet.</exception>
    public static bool TryParseRequestHead(in ReadOnlySequence<byte> buffer, Http1Limits limits, ref Http1HeadScan scan, [NotNullWhen(true)] out HttpRequestHead? head, out SequencePosition consumed)
    {
        ArgumentNullException.ThrowIfNull(limits);
        head = null;
        consumed = buffer.Start;
        if (!TryLocateHead(buffer, limits, request: true, ref scan, out long total))
        {
            return false;
        }

        if (buffer.IsSingleSegment)
        {
            head = BuildRequestHead(buffer.FirstSpan[..(int)total], ref scan);
        }
        else
        {
            byte[] rented = ArrayPool<byte>.Shared.Rent((int)total);
            try
            {
                buffer.Slice(0, total).CopyTo(rented);
                head = BuildRequestHead(rented.AsSpan(0, (int)total), ref scan);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        consumed = buffer.GetPosition(total);
        scan.Reset();
        return true;
    }

    /// <summary>Parses a response head (status line and header section) from the start of <paramref name="buffer"/>.</summary>
    /// <param name="buffer">Bytes received so far; not consumed by this call.</param>
    /// <param name="limits">The caps to enforce (the request-line cap also bounds the status line).</param>
    /// <param name="head">The parsed head when the method returns <see langword="true"/>.</param>
    /// <param name="consumed">Just past the CRLF that ends the header section; <c>buffer.Start</c> when incomplete.</param>
    /// <returns><see langword="true"/> when a complete head was parsed; <see langword="false"/> when more bytes are needed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="limits"/> is null.</exception>
    /// <exception cref="HttpProtocolException">The bytes are malformed or exceed a limit (<see cref="HttpProtocolException.InResponse"/> is set, status 502).</exception>
    public static bool TryParseResponseHead(in ReadOnlySequence<byte> buffer, Http1Limits limits, [NotNullWhen(true)] out HttpResponseHead? head, out SequencePosition consumed)
    {
        var scan = Http1HeadScan.ForOneHead();
        return TryParseResponseHead(buffer, limits, ref scan, out head, out consumed);
    }

    /// <summary>Parses a response head, resuming the scan where the previous incomplete attempt on this buffer stopped.</summary>
    /// <param name="buffer">Bytes received so far, starting at the same byte as on the previous attempt; not consumed.</param>
    /// <param name="limits">The caps to enforce (the request-line cap also bounds the status line).</param>
    /// <param name="scan">Scan progress, kept by the caller between attempts; reset when a head is returned.</param>
    /// <param name="head">The parsed head when the method returns <see langword="true"/>.</param>
    /// <param name="consumed">Just past the CRLF that ends the header section; <c>buffer.Start</c> when incomplete.</param>
    /// <returns><see langword="true"/> when a complete head was parsed; <see langword="false"/> when more bytes are needed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="limits"/> is null.</exception>
    /// <exception cref="HttpProtocolException">The bytes are malformed or exceed a limit (<see cref="HttpProtocolException.InResponse"/> is set, status 502).</exception>
    public static bool TryParseResponseHead(in ReadOnlySequence<byte> buffer, Http1Limits limits, ref Http1HeadScan scan, [NotNullWhen(true)] out HttpResponseHead? head, out SequencePosition consumed)
    {
        ArgumentNullException.ThrowIfNull(limits);
        head = null;
        consumed = buffer.Start;
        if (!TryLocateHead(buffer, limits, request: false, ref scan, out long total))
        {
            return false;
        }

        if (buffer.IsSingleSegment)
        {
            head = BuildResponseHead(buffer.FirstSpan[..(int)total], ref scan);
        }
        else
        {
            byte[] rented = ArrayPool<byte>.Shared.Rent((int)total);
            try
            {
                buffer.Slice(0, total).CopyTo(rented);
                head = BuildResponseHead(rented.AsSpan(0, (int)total), ref scan);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        consumed = buffer.GetPosition(total);
        scan.Reset();
        return true;
    }

    /// <summary>Validates one field line (without its CRLF) and appends it to <paramref name="headers"/>.</summary>
    internal static void ParseFieldLine(ReadOnlySpan<byte> line, HttpHeaders headers, bool inResponse, Http1StringReuse? strings = null)
    {
        // RFC 9112 §2.2: a bare CR MUST be treated as invalid or replaced with SP; Interpose rejects it.
        if (line.Contains((byte)'\r'))
        {
            Rejections.Throw(RejectionReason.BareCarriageReturn, inResponse);
        }

        // RFC 9112 §5.2: obs-fold is deprecated; a server MUST reject it (400) or replace it with SP, and a proxy
        // forwarding a response MUST do the same. Interpose rejects both directions so nothing downstream unfolds it differently.
        // (A line starting with whitespace right after the start-line is the §2.2 case; also rejected.)
        if (HttpChars.IsWhitespace(line[0]))
        {
            Rejections.Throw(RejectionReason.ObsoleteLineFolding, inResponse);
        }

        int colon = line.IndexOf((byte)':');
        if (colon <= 0)
        {
            Rejections.Throw(RejectionReason.InvalidHeaderName, inResponse);
        }

        ReadOnlySpan<byte> name = line[..colon];

        // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon ... A server MUST reject ... with 400";
        // a proxy MUST remove it from a response, and Interpose rejects the response instead.
        if (HttpChars.IsWhitespace(name[^1]))
        {
            Rejections.Throw(RejectionReason.WhitespaceBeforeColon, inResponse);
        }

        // RFC 9110 §5.1: field-name = token.
        if (name.IndexOfAnyExcept(TokenBytes) >= 0)
        {
            Rejections.Throw(RejectionReason.InvalidHeaderName, inResponse);
        }

        // RFC 9112 §5.1: field-line = field-name ":" OWS field-value OWS.
        ReadOnlySpan<byte> value = line[(colon + 1)..].Trim(" \t"u8);

        // RFC 9110 §5.5: CR, LF and NUL are invalid and other CTLs are not field-vchar; reject them all.
        if (value.IndexOfAny(InvalidFieldValueBytes) >= 0)
        {
            Rejections.Throw(RejectionReason.InvalidHeaderValue, inResponse);
        }

        string text = strings is not null ? strings.Value(headers.Count, value)
            : value.IsEmpty ? string.Empty : Encoding.Latin1.GetString(value);
        headers.AddParsed(KnownHeaderNames.GetName(name), text);
    }

    internal static bool IsValidTargetText(string target)
    {
        if (string.IsNullOrEmpty(target))
        {
            return false;
        }

        foreach (char c in target)
        {
            if (c is <= ' ' or >= '\u007F')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Splits the head into lines without interpreting them, resuming from <paramref name="scan"/>: every search is
    /// bounded by a limit, so an incomplete or hostile head costs at most the limits once in total.
    /// </summary>
    private static bool TryLocateHead(in ReadOnlySequence<byte> buffer, Http1Limits limits, bool request, ref Http1HeadScan scan, out long total)
    {
        total = 0;
        bool inResponse = !request;
        long length = buffer.Length;
        if (scan.Phase == Http1HeadScan.ScanPhase.Leading)
        {
            // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line; a bounded number here.
            while (request && scan.LineStart < length)
            {
                byte b = ByteAt(buffer, scan.LineStart);
                if (b == (byte)'\r')
                {
                    if (scan.LineStart + 1 >= length)
                    {
                        return false;
                    }

                    if (ByteAt(buffer, scan.LineStart + 1) != (byte)'\n')
                    {
                        Rejections.Throw(RejectionReason.BareCarriageReturn);
                    }

                    scan.LineStart += 2;
                    if (++scan.LeadingEmptyLines > MaxLeadingEmptyLines)
                    {
                        Rejections.Throw(RejectionReason.InvalidRequestLine);
                    }
                }
                else if (b == (byte)'\n')
                {
                    Rejections.Throw(RejectionReason.BareLineFeed);
                }
                else
                {
                    break;
                }
            }

            if (scan.LineStart >= length)
            {
                return false;
            }

            scan.SearchFrom = scan.LineStart;
            scan.Phase = Http1HeadScan.ScanPhase.StartLine;
        }

        if (scan.Phase == Http1HeadScan.ScanPhase.StartLine)
        {
            // RFC 9112 §3: a server receiving a request-target longer than it wishes to parse MUST respond 414.
            long limit = scan.LineStart + limits.MaxRequestLineLength + 2;
            long lf = FindLineFeed(buffer, ref scan, limit, request ? RejectionReason.RequestLineTooLong : RejectionReason.StatusLineTooLong, inResponse);
            if (lf < 0)
            {
                return false;
            }

            scan.StartLineOffset = scan.LineStart;
            scan.StartLineLength = (int)(lf - 1 - scan.LineStart);
            scan.HeaderStart = lf + 1;
            scan.LineStart = scan.SearchFrom = lf + 1;
            scan.Phase = Http1HeadScan.ScanPhase.Fields;
        }

        while (true)
        {
            long lf = FindLineFeed(buffer, ref scan, scan.HeaderStart + limits.MaxHeaderBytes, RejectionReason.HeadersTooLarge, inResponse);
            if (lf < 0)
            {
                return false;
            }

            if (lf - scan.LineStart == 1)
            {
                total = lf + 1;
                return true;
            }

            if (++scan.FieldCount > limits.MaxHeaderCount)
            {
                Rejections.Throw(RejectionReason.TooManyHeaders, inResponse);
            }

            scan.LineStart = scan.SearchFrom = lf + 1;
        }
    }

    /// <summary>Finds the LF ending the current line before offset <paramref name="limit"/>; -1 when not received yet.</summary>
    private static long FindLineFeed(in ReadOnlySequence<byte> buffer, ref Http1HeadScan scan, long limit, RejectionReason tooLarge, bool inResponse)
    {
        long end = Math.Min(buffer.Length, limit);
        long lf = -1;
        if (end > scan.SearchFrom)
        {
            ReadOnlySequence<byte> window = buffer.Slice(scan.SearchFrom, end - scan.SearchFrom);
            if (window.IsSingleSegment)
            {
                int i = window.FirstSpan.IndexOf((byte)'\n');
                lf = i < 0 ? -1 : scan.SearchFrom + i;
            }
            else
            {
                SequencePosition? p = window.PositionOf((byte)'\n');
                lf = p is null ? -1 : scan.SearchFrom + window.Slice(0, p.Value).Length;
            }
        }

        if (lf < 0)
        {
            if (buffer.Length >= limit)
            {
                Rejections.Throw(tooLarge, inResponse);
            }

            scan.SearchFrom = end;
            return -1;
        }

        // RFC 9112 §2.2: a bare LF as line terminator MAY be accepted; Interpose rejects it because a
        // downstream parser that disagrees would see a different message boundary.
        if (lf == scan.LineStart || ByteAt(buffer, lf - 1) != (byte)'\r')
        {
            Rejections.Throw(RejectionReason.BareLineFeed, inResponse);
        }

        return lf;
    }

    private static byte ByteAt(in ReadOnlySequence<byte> buffer, long offset) =>
        buffer.IsSingleSegment ? buffer.FirstSpan[(int)offset] : buffer.Slice(offset, 1).FirstSpan[0];

    private static HttpRequestHead BuildRequestHead(ReadOnlySpan<byte> span, ref Http1HeadScan scan)
    {
        ReadOnlySpan<byte> line = span.Slice((int)scan.StartLineOffset, scan.StartLineLength);
        if (line.Contains((byte)'\r'))
        {
            Rejections.Throw(RejectionReason.BareCarriageReturn);
        }

        // RFC 9112 §3: request-line = method SP request-target SP HTTP-version, single spaces, nothing else.
        int sp1 = line.IndexOf((byte)' ');
        if (sp1 < 0)
        {
            Rejections.Throw(RejectionReason.InvalidRequestLine);
        }

        ReadOnlySpan<byte> method = line[..sp1];

        // RFC 9110 §9.1: method = token.
        if (method.IsEmpty || method.IndexOfAnyExcept(TokenBytes) >= 0)
        {
            Rejections.Throw(RejectionReason.InvalidMethod);
        }

        ReadOnlySpan<byte> afterMethod = line[(sp1 + 1)..];
        int sp2 = afterMethod.LastIndexOf((byte)' ');
        if (sp2 < 0)
        {
            Rejections.Throw(RejectionReason.InvalidRequestLine);
        }

        ReadOnlySpan<byte> target = afterMethod[..sp2];

        // RFC 9112 §3.2: the request-target holds no whitespace; RFC 3986 URIs are ASCII without CTLs.
        // (A target with an inner space would be the classic "GET /a b HTTP/1.1" ambiguity.)
        if (target.IsEmpty || target.IndexOfAnyExceptInRange((byte)0x21, (byte)0x7E) >= 0)
        {
            Rejections.Throw(RejectionReason.InvalidRequestTarget);
        }

        Version version = ParseVersion(afterMethod[(sp2 + 1)..], RejectionReason.InvalidRequestLine, inResponse: false);

        var strings = scan.Strings;
        var headers = new HttpHeaders(scan.FieldCount + SpareFieldCapacity);
        ParseFieldLines(span[(int)scan.HeaderStart..^2], headers, strings, inResponse: false);
        ValidateHost(headers, version);
        return new HttpRequestHead(KnownHeaderNames.GetMethod(method), strings?.Target(target) ?? Encoding.ASCII.GetString(target), version, headers);
    }

    private static HttpResponseHead BuildResponseHead(ReadOnlySpan<byte> span, ref Http1HeadScan scan)
    {
        ReadOnlySpan<byte> line = span.Slice((int)scan.StartLineOffset, scan.StartLineLength);
        if (line.Contains((byte)'\r'))
        {
            Rejections.Throw(RejectionReason.BareCarriageReturn, inResponse: true);
        }

        // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
        // NOTE: "HTTP/1.1 200" without the second SP is accepted (reason empty): common in the wild and unambiguous.
        if (line.Length < HttpVersionLength + 4 || line[HttpVersionLength] != (byte)' ')
        {
            Rejections.Throw(RejectionReason.InvalidStatusLine, inResponse: true);
        }

        Version version = ParseVersion(line[..HttpVersionLength], RejectionReason.InvalidStatusLine, inResponse: true);
        ReadOnlySpan<byte> code = line.Slice(HttpVersionLength + 1, 3);
        if (!char.IsAsciiDigit((char)code[0]) || !char.IsAsciiDigit((char)code[1]) || !char.IsAsciiDigit((char)code[2]))
        {
            Rejections.Throw(RejectionReason.InvalidStatusLine, inResponse: true);
        }

        int statusCode = ((code[0] - '0') * 100) + ((code[1] - '0') * 10) + (code[2] - '0');

        // RFC 9110 §15: status codes are 100..599.
        if (statusCode is < 100 or > 599)
        {
            Rejections.Throw(RejectionReason.InvalidStatusLine, inResponse: true);
        }

        ReadOnlySpan<byte> reason = [];
        if (line.Length > HttpVersionLength + 4)
        {
            if (line[HttpVersionLength + 4] != (byte)' ')
            {
                Rejections.Throw(RejectionReason.InvalidStatusLine, inResponse: true);
            }

            // RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).
            reason = line[(HttpVersionLength + 5)..];
            if (reason.IndexOfAny(InvalidFieldValueBytes) >= 0)
            {
                Rejections.Throw(RejectionReason.InvalidStatusLine, inResponse: true);
            }
        }

        var headers = new HttpHeaders(scan.FieldCount + SpareFieldCapacity);
        ParseFieldLines(span[(int)scan.HeaderStart..^2], headers, scan.Strings, inResponse: true);
        return new HttpResponseHead(version, statusCode, KnownHeaderNames.GetReason(reason), headers);
    }

    private static void ParseFieldLines(ReadOnlySpan<byte> lines, HttpHeaders headers, Http1StringReuse? strings, bool inResponse)
    {
        while (!lines.IsEmpty)
        {
            // TryLocateHead guaranteed every line ends with CRLF.
            int lf = lines.IndexOf((byte)'\n');
            ParseFieldLine(lines[..(lf - 1)], headers, inResponse, strings);
            lines = lines[(lf + 1)..];
        }
    }

    private static Version ParseVersion(ReadOnlySpan<byte> text, RejectionReason malformed, bool inResponse)
    {
        // RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT, HTTP-name case-sensitive.
        if (text.Length != HttpVersionLength || !text.StartsWith("HTTP/"u8) || text[6] != (byte)'.'
            || !char.IsAsciiDigit((char)text[5]) || !char.IsAsciiDigit((char)text[7]))
        {
            Rejections.Throw(malformed, inResponse);
        }

        if (text[5] == (byte)'1')
        {
            if (text[7] == (byte)'1')
            {
                return HttpVersion.Version11;
            }

            if (text[7] == (byte)'0')
            {
                return HttpVersion.Version10;
            }
        }

        // RFC 9110 §15.6.6: 505 for a major version we do not support; 1.2+ and 2.0 on an HTTP/1 connection included.
        throw Rejections.Create(RejectionReason.UnsupportedHttpVersion, inResponse);
    }

    private static void ValidateHost(HttpHeaders headers, Version version)
    {
        string? host = null;
        int count = 0;
        foreach (HttpHeader h in headers)
        {
            if (string.Equals(h.Name, "Host", StringComparison.OrdinalIgnoreCase))
            {
                host = h.Value;
                count++;
            }
        }

        // RFC 9112 §3.2: "A server MUST respond with a 400 ... to any HTTP/1.1 request message that lacks a Host
        // header field and to any request message that contains more than one Host header field line or a Host
        // header field with an invalid field value."
        if (count > 1)
        {
            Rejections.Throw(RejectionReason.MultipleHost);
        }

        if (host is null)
        {
            if (version == HttpVersion.Version11)
            {
                Rejections.Throw(RejectionReason.MissingHost);
            }

            return;
        }

        // RFC 9112 §3.2: Host may be empty when the target has no authority.
        if (host.Length != 0 && !RequestTargetParser.IsValidAuthority(host, portRequired: false))
        {
            Rejections.Throw(RejectionReason.InvalidHost);
        }
    }

}
