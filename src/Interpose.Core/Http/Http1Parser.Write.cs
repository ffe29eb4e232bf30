using System.Buffers;
using System.Net;
using System.Text;

namespace Interpose.Core.Http;

/// <summary>The writing half of <see cref="Http1Parser"/>: request and response heads serialized exactly as the fields are held.</summary>
public static partial class Http1Parser
{
    /// <summary>Writes <c>method SP request-target SP HTTP/x.y CRLF</c>, every header line in order and spelling, and the final CRLF.</summary>
    /// <param name="head">The head to serialize.</param>
    /// <param name="output">Where the bytes go.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The method is not a token, the target is empty or holds bytes outside 0x21..0x7E, or the version is not 1.0/1.1.</exception>
    public static void WriteRequestHead(HttpRequestHead head, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(head);
        WriteRequestHead(head.Method, head.Target, head.Version, head.Headers, output);
    }

    /// <summary>
    /// Writes a request head from its parts, so that a proxy can send the fields it holds without first copying them
    /// into a new <see cref="HttpRequestHead"/>.
    /// </summary>
    /// <param name="method">The method (an RFC 9110 token).</param>
    /// <param name="target">The request-target.</param>
    /// <param name="version">HTTP/1.0 or HTTP/1.1.</param>
    /// <param name="headers">The header lines, written in order and spelling.</param>
    /// <param name="output">Where the bytes go.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The method is not a token, the target is empty or holds bytes outside 0x21..0x7E, or the version is not 1.0/1.1.</exception>
    public static void WriteRequestHead(string method, string target, Version version, HttpHeaders headers, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(output);
        string versionText = VersionText(version);
        if (!HttpChars.IsToken(method))
        {
            throw new ArgumentException("The method is not an RFC 9110 token.", nameof(method));
        }

        if (!IsValidTargetText(target))
        {
            throw new ArgumentException("The request-target is empty or holds whitespace, control or non-ASCII characters.", nameof(target));
        }

        int total = method.Length + 1 + target.Length + 1 + HttpVersionLength + 2 + HeadersLength(headers) + 2;
        Span<byte> span = output.GetSpan(total);
        int pos = WriteLatin1(span, method);
        span[pos++] = (byte)' ';
        pos += WriteLatin1(span[pos..], target);
        span[pos++] = (byte)' ';
        pos += WriteLatin1(span[pos..], versionText);
        pos = WriteCrlf(span, pos);
        pos = WriteHeaders(span, pos, headers);
        pos = WriteCrlf(span, pos);
        output.Advance(pos);
    }

    /// <summary>Writes <c>HTTP/x.y SP 3DIGIT SP reason CRLF</c>, every header line in order and spelling, and the final CRLF.</summary>
    /// <param name="head">The head to serialize.</param>
    /// <param name="output">Where the bytes go.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The status code is outside 100..599, the reason holds control or non-Latin-1 characters, or the version is not 1.0/1.1.</exception>
    public static void WriteResponseHead(HttpResponseHead head, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(head);
        WriteResponseHead(head.Version, head.StatusCode, head.ReasonPhrase, head.Headers, output);
    }

    /// <summary>
    /// Writes a response head from its parts, so that a proxy can send the fields it holds without first copying them
    /// into a new <see cref="HttpResponseHead"/>.
    /// </summary>
    /// <param name="version">HTTP/1.0 or HTTP/1.1.</param>
    /// <param name="statusCode">100..599.</param>
    /// <param name="reasonPhrase">The reason phrase; empty when null.</param>
    /// <param name="headers">The header lines, written in order and spelling.</param>
    /// <param name="output">Where the bytes go.</param>
    /// <exception cref="ArgumentNullException">An argument other than the reason is null.</exception>
    /// <exception cref="ArgumentException">The status code is outside 100..599, the reason holds control or non-Latin-1 characters, or the version is not 1.0/1.1.</exception>
    public static void WriteResponseHead(Version version, int statusCode, string? reasonPhrase, HttpHeaders headers, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(output);
        string versionText = VersionText(version);
        if (statusCode is < 100 or > 599)
        {
            throw new ArgumentException("The status code must be 100..599 (RFC 9110 §15).", nameof(statusCode));
        }

        string reason = reasonPhrase ?? string.Empty;
        if (!IsValidReasonPhrase(reason))
        {
            throw new ArgumentException("The reason phrase holds a control or non-Latin-1 character.", nameof(reasonPhrase));
        }

        int total = HttpVersionLength + 1 + 3 + 1 + reason.Length + 2 + HeadersLength(headers) + 2;
        Span<byte> span = output.GetSpan(total);
        int pos = WriteLatin1(span, versionText);
        span[pos++] = (byte)' ';
        int code = statusCode;
        span[pos++] = (byte)('0' + (code / 100));
        span[pos++] = (byte)('0' + (code / 10 % 10));
        span[pos++] = (byte)('0' + (code % 10));
        span[pos++] = (byte)' ';
        pos += WriteLatin1(span[pos..], reason);
        pos = WriteCrlf(span, pos);
        pos = WriteHeaders(span, pos, headers);
        pos = WriteCrlf(span, pos);
        output.Advance(pos);
    }

    /// <summary>Whether <paramref name="reason"/> can be sent as a reason phrase: empty, or HTAB, SP, VCHAR and obs-text only.</summary>
    internal static bool IsValidReasonPhrase(string reason)
    {
        foreach (char c in reason)
        {
            // RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).
            if (c > '\u00FF' || !HttpChars.IsFieldValueChar((byte)c))
            {
                return false;
            }
        }

        return true;
    }

    private static string VersionText(Version version)
    {
        ArgumentNullException.ThrowIfNull(version);
        if (version == HttpVersion.Version11)
        {
            return "HTTP/1.1";
        }

        if (version == HttpVersion.Version10)
        {
            return "HTTP/1.0";
        }

        throw new ArgumentException("Only HTTP/1.0 and HTTP/1.1 heads can be written.", nameof(version));
    }

    private static int HeadersLength(HttpHeaders headers)
    {
        int total = 0;
        foreach (HttpHeader h in headers)
        {
            total += h.Name.Length + 2 + h.Value.Length + 2;
        }

        return total;
    }

    private static int WriteHeaders(Span<byte> span, int pos, HttpHeaders headers)
    {
        foreach (HttpHeader h in headers)
        {
            pos += WriteLatin1(span[pos..], h.Name);
            span[pos++] = (byte)':';
            span[pos++] = (byte)' ';
            pos += WriteLatin1(span[pos..], h.Value);
            pos = WriteCrlf(span, pos);
        }

        return pos;
    }

    private static int WriteLatin1(Span<byte> span, string s) => Encoding.Latin1.GetBytes(s, span);

    private static int WriteCrlf(Span<byte> span, int pos)
    {
        span[pos] = (byte)'\r';
        span[pos + 1] = (byte)'\n';
        return pos + 2;
    }
}
