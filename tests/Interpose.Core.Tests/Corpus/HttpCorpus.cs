using System.Text;
using Interpose.Core.Http;

namespace Interpose.Core.Tests.Corpus;

/// <summary>
/// Shared HTTP/1.1 inputs: valid, incomplete and invalid request and response heads (invalid ones with the expected
/// <see cref="RejectionReason"/>). Framing rejections (CL/TE) are raised by <see cref="MessageFraming"/> after a
/// successful head parse; the engine does both, so socket-level tests can send these bytes unchanged.
/// Strings are Latin-1: each char is one byte on the wire.
/// </summary>
public static class HttpCorpus
{
    /// <summary>Complete request messages (head plus body if any) that must be accepted, with the decoded body.</summary>
    public static IReadOnlyList<(string Name, string Raw, string Body)> ValidRequests { get; } =
    [
        ("simple GET", "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n", ""),
        ("browser GET", "GET /search?q=interpose HTTP/1.1\r\nHost: example.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\nAccept-Language: en\r\nAccept-Encoding: gzip, br\r\nCookie: a=1; b=2\r\nCookie: c=3\r\nConnection: keep-alive\r\n\r\n", ""),
        ("POST content-length", "POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello", "hello"),
        ("POST chunked", "POST /up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", "hello world"),
        ("chunked with trailers", "POST /up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\nA\r\n0123456789\r\n0\r\nX-Sum: 45\r\nX-Other: yes\r\n\r\n", "0123456789"),
        ("TE case and OWS", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \t Chunked \t\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "abc"),
        ("TE gzip then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n", "zz"),
        ("TE split over two lines", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n", "q"),
        ("upper-case hex chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000B\r\nhello world\r\n0\r\n\r\n", "hello world"),
        ("identical CL list", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", "abc"),
        ("identical CL lines", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "abc"),
        ("leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", ""),
        ("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", ""),
        ("absolute-form", "GET http://example.test:8080/p?q HTTP/1.1\r\nHost: example.test:8080\r\n\r\n", ""),
        ("CONNECT", "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n", ""),
        ("OPTIONS asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", ""),
        ("obs-text and empty values", "GET / HTTP/1.1\r\nHost: a\r\nX-Latin: caf\u00e9\r\nX-Empty:\r\nX-Tabs:\tb\tc\t\r\n\r\n", ""),
        ("IPv6 Host and empty Host-less target", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", ""),
    ];

    /// <summary>Complete response messages (to a GET) that must be accepted, with the decoded body.</summary>
    public static IReadOnlyList<(string Name, string Raw, string Body)> ValidResponses { get; } =
    [
        ("200 content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", "hello"),
        ("204", "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", ""),
        ("no reason phrase", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", "ok"),
        ("empty reason phrase", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", ""),
        ("chunked with trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n", "Wikipedia"),
        ("reason with tab and obs-text", "HTTP/1.1 200 Tr\u00e8s\tbien\r\nContent-Length: 1\r\n\r\n!", "!"),
        ("set-cookie duplicates", "HTTP/1.1 302 Found\r\nLocation: /\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n", ""),
    ];

    /// <summary>Prefixes of valid requests: the parser must ask for more and not throw.</summary>
    public static IReadOnlyList<string> IncompleteRequests { get; } =
    [
        "", "G", "GET", "GET ", "GET / HTTP/1.1", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nHost: a",
        "GET / HTTP/1.1\r\nHost: a\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r", "\r", "\r\n", "\r\n\r\nGET",
    ];

    /// <summary>Prefixes of valid responses.</summary>
    public static IReadOnlyList<string> IncompleteResponses { get; } =
    [
        "", "H", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK\r", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nServer: x\r\n", "HTTP/1.1 200 OK\r\n\r",
    ];

    /// <summary>Requests that must be rejected, by head parsing or by <see cref="MessageFraming.ForRequest"/>.</summary>
    public static IReadOnlyList<(string Raw, RejectionReason Reason)> InvalidRequests { get; } =
    [
        // CL.TE / TE.CL smuggling (RFC 9112 §6.1, §6.3).
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", RejectionReason.ContentLengthWithTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", RejectionReason.ContentLengthWithTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", RejectionReason.ConflictingContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", RejectionReason.ConflictingContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", RejectionReason.InvalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", RejectionReason.InvalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", RejectionReason.InvalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", RejectionReason.InvalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n", RejectionReason.InvalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", RejectionReason.InvalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", RejectionReason.InvalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", RejectionReason.InvalidContentLength),

        // TE.TE obfuscations.
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", RejectionReason.UnsupportedTransferCoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", RejectionReason.UnsupportedTransferCoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", RejectionReason.InvalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", RejectionReason.InvalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", RejectionReason.TransferEncodingNotChunkedLast),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", RejectionReason.TransferEncodingNotChunkedLast),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", RejectionReason.InvalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", RejectionReason.InvalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunk ed\r\n\r\n", RejectionReason.InvalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", RejectionReason.InvalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", RejectionReason.InvalidTransferEncoding),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", RejectionReason.TransferEncodingInHttp10),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", RejectionReason.WhitespaceBeforeColon),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", RejectionReason.WhitespaceBeforeColon),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", RejectionReason.ObsoleteLineFolding),

        // Field syntax (RFC 9112 §2.2, §5; RFC 9110 §5).
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", RejectionReason.ObsoleteLineFolding),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", RejectionReason.ObsoleteLineFolding),
        ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", RejectionReason.ObsoleteLineFolding),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", RejectionReason.WhitespaceBeforeColon),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", RejectionReason.BareCarriageReturn),
        ("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.BareCarriageReturn),
        ("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.BareCarriageReturn),
        ("GET / HTTP/1.1\nHost: a\r\n\r\n", RejectionReason.BareLineFeed),
        ("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", RejectionReason.BareLineFeed),
        ("GET / HTTP/1.1\r\nHost: a\r\n\n", RejectionReason.BareLineFeed),
        ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.BareLineFeed),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", RejectionReason.InvalidHeaderValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u0001c\r\n\r\n", RejectionReason.InvalidHeaderValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u007fc\r\n\r\n", RejectionReason.InvalidHeaderValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX\0A: b\r\n\r\n", RejectionReason.InvalidHeaderName),
        ("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", RejectionReason.InvalidHeaderName),
        ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", RejectionReason.InvalidHeaderName),
        ("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", RejectionReason.InvalidHeaderName),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-\u00e9: b\r\n\r\n", RejectionReason.InvalidHeaderName),

        // Request line (RFC 9112 §3).
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidMethod),
        (" GET / HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidMethod),
        ("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidMethod),
        ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestTarget),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestTarget),
        ("GET /\u0001 HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestTarget),
        ("GET /caf\u00e9 HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestTarget),
        ("GET /\t HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestTarget),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestTarget),
        ("GET /\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestLine),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestLine),
        ("GET / HTTP/1.10\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestLine),
        ("GET / HTTP/11\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestLine),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", RejectionReason.UnsupportedHttpVersion),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", RejectionReason.UnsupportedHttpVersion),
        ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", RejectionReason.UnsupportedHttpVersion),
        ("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.InvalidRequestLine),

        // Host (RFC 9112 §3.2).
        ("GET / HTTP/1.1\r\n\r\n", RejectionReason.MissingHost),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", RejectionReason.MultipleHost),
        ("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", RejectionReason.MultipleHost),
        ("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", RejectionReason.MultipleHost),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", RejectionReason.InvalidHost),
        ("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", RejectionReason.InvalidHost),
        ("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", RejectionReason.InvalidHost),
        ("GET / HTTP/1.1\r\nHost: a:0\r\n\r\n", RejectionReason.InvalidHost),
        ("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", RejectionReason.InvalidHost),

        // Limits (414 / 431).
        ("GET /" + new string('a', 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", RejectionReason.RequestLineTooLong),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + new string('b', 40_000) + "\r\n\r\n", RejectionReason.HeadersTooLarge),
        ("GET / HTTP/1.1\r\nHost: a\r\n" + ManyHeaders(100) + "\r\n", RejectionReason.TooManyHeaders),
    ];

    /// <summary>Responses (to a GET) that must be rejected, by head parsing or by <see cref="MessageFraming.ForResponse"/>.</summary>
    public static IReadOnlyList<(string Raw, RejectionReason Reason)> InvalidResponses { get; } =
    [
        ("HTTP/1.1 2000 OK\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("HTTP/1.1 20 OK\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("HTTP/1.1 099 Low\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("HTTP/1.1 600 High\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("HTTP/1.1 200OK\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("HTTP/1.1  200 OK\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("HTTP/1.1 2x0 OK\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("ICY 200 OK\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("HTTP/1.1 200 O\u0001K\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("http/1.1 200 OK\r\n\r\n", RejectionReason.InvalidStatusLine),
        ("HTTP/2.0 200 OK\r\n\r\n", RejectionReason.UnsupportedHttpVersion),
        ("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", RejectionReason.BareLineFeed),
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", RejectionReason.BareLineFeed),
        ("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", RejectionReason.BareCarriageReturn),
        ("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", RejectionReason.ObsoleteLineFolding),
        ("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", RejectionReason.WhitespaceBeforeColon),
        ("HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n", RejectionReason.InvalidHeaderValue),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", RejectionReason.ContentLengthWithTransferEncoding),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n", RejectionReason.ConflictingContentLength),
        ("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", RejectionReason.InvalidContentLength),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", RejectionReason.InvalidTransferEncoding),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", RejectionReason.InvalidTransferEncoding),
        ("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", RejectionReason.TransferEncodingInHttp10),
        ("HTTP/1.1 200 " + new string('r', 9000) + "\r\n\r\n", RejectionReason.StatusLineTooLong),
        ("HTTP/1.1 200 OK\r\n" + ManyHeaders(101) + "\r\n", RejectionReason.TooManyHeaders),
    ];

    public static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    public static TheoryData<string> Names(IReadOnlyList<(string Name, string Raw, string Body)> list)
    {
        var data = new TheoryData<string>();
        foreach ((string name, _, _) in list)
        {
            data.Add(name);
        }

        return data;
    }

    private static string ManyHeaders(int count)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            sb.Append("X-H").Append(i).Append(": v\r\n");
        }

        return sb.ToString();
    }
}
