using System.Net;
using Interpose.Core.Http;

namespace Interpose.Core.Tests;

public class MessageFramingTests
{
    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n\r\n", BodyKind.None, 0)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n", BodyKind.ContentLength, 42)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", BodyKind.ContentLength, 0)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n", BodyKind.ContentLength, 7)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n", BodyKind.ContentLength, 999999999999999999)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", BodyKind.Chunked, 0)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", BodyKind.Chunked, 0)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: deflate,chunked\r\n\r\n", BodyKind.Chunked, 0)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n", BodyKind.Chunked, 0)]
    [InlineData("GET / HTTP/1.0\r\n\r\n", BodyKind.None, 0)]
    public void Request_framing(string raw, BodyKind kind, long length)
    {
        Assert.Equal(new BodyFraming(kind, length), MessageFraming.ForRequest(Http1ParserTests.ParseRequest(raw)));
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET", BodyKind.ContentLength, 5)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", BodyKind.None, 0)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", BodyKind.None, 0)]
    [InlineData("HTTP/1.1 100 Continue\r\n\r\n", "POST", BodyKind.None, 0)]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "GET", BodyKind.None, 0)]
    [InlineData("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n", "GET", BodyKind.None, 0)]
    [InlineData("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "GET", BodyKind.None, 0)]
    [InlineData("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET", BodyKind.None, 0)]
    [InlineData("HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT", BodyKind.None, 0)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "CONNECT", BodyKind.None, 0)]
    [InlineData("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\n", "CONNECT", BodyKind.ContentLength, 3)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", BodyKind.Chunked, 0)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", BodyKind.CloseDelimited, 0)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "GET", BodyKind.CloseDelimited, 0)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: x-custom, chunked\r\n\r\n", "GET", BodyKind.Chunked, 0)]
    [InlineData("HTTP/1.1 200 OK\r\n\r\n", "GET", BodyKind.CloseDelimited, 0)]
    [InlineData("HTTP/1.0 200 OK\r\n\r\n", "GET", BodyKind.CloseDelimited, 0)]
    [InlineData("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "GET", BodyKind.ContentLength, 0)]
    public void Response_framing(string raw, string method, BodyKind kind, long length)
    {
        Assert.Equal(new BodyFraming(kind, length), MessageFraming.ForResponse(Http1ParserTests.ParseResponse(raw), method));
    }

    [Fact]
    public void Framing_reads_headers_set_by_hooks()
    {
        var head = new HttpRequestHead { Method = "POST", Version = HttpVersion.Version11 };
        head.Headers.Add("Host", "a");
        head.Headers.Add("content-length", "12");
        Assert.Equal(new BodyFraming(BodyKind.ContentLength, 12), MessageFraming.ForRequest(head));
        head.Headers.Add("transfer-encoding", "chunked");
        Assert.Equal(RejectionReason.ContentLengthWithTransferEncoding, Assert.Throws<HttpProtocolException>(() => MessageFraming.ForRequest(head)).Reason);
    }

    [Fact]
    public void Unknown_request_coding_is_501()
    {
        var ex = Assert.Throws<HttpProtocolException>(() => MessageFraming.ForRequest(Http1ParserTests.ParseRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br, chunked\r\n\r\n")));
        Assert.Equal(RejectionReason.UnsupportedTransferCoding, ex.Reason);
        Assert.Equal(501, ex.StatusCode);
    }
}
