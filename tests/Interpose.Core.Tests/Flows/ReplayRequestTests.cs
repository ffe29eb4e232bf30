using System.Text;
using Interpose.Core.Flows;
using Interpose.Core.Http;

namespace Interpose.Core.Tests.Flows;

/// <summary>The bytes client replay sends to its in-process proxy for a recorded request.</summary>
public sealed class ReplayRequestTests
{
    [Fact]
    public void Fields_keep_their_order_and_case_connection_fields_are_dropped_and_the_body_is_sent_as_recorded()
    {
        var request = Request("POST", "https", "example.test", 8443, "/a?b=1", "payload",
            ("host", "example.test:8443"), ("X-B", "2"), ("Connection", "keep-alive"), ("x-a", "1"), ("Content-Length", "7"), ("Proxy-Connection", "x"), ("Keep-Alive", "5"));

        var text = Encoding.Latin1.GetString(ReplayRequest.Serialize(request));

        Assert.Equal("POST https://example.test:8443/a?b=1 HTTP/1.1\r\nhost: example.test:8443\r\nX-B: 2\r\nx-a: 1\r\nContent-Length: 7\r\nConnection: close\r\n\r\npayload", text);
    }

    [Fact]
    public void A_request_recorded_over_HTTP2_gets_Host_from_its_authority_and_a_Content_Length_for_its_body()
    {
        var request = Request("PUT", "https", "example.test", 443, "/x", "{}", ("content-type", "application/json"));

        var text = Encoding.Latin1.GetString(ReplayRequest.Serialize(request));

        Assert.Equal("PUT https://example.test/x HTTP/1.1\r\nHost: example.test\r\ncontent-type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", text);
    }

    [Fact]
    public void A_chunked_body_is_sent_as_one_chunk_with_the_recorded_trailers()
    {
        var request = Request("POST", "http", "example.test", 80, "/up", "hello, world", ("Host", "example.test"), ("Transfer-Encoding", "chunked")) with
        {
            Trailers = Headers(("X-Checksum", "abc")),
        };

        var text = Encoding.Latin1.GetString(ReplayRequest.Serialize(request));

        Assert.Equal("POST http://example.test/up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nc\r\nhello, world\r\n0\r\nX-Checksum: abc\r\n\r\n", text);
    }

    [Fact]
    public void A_body_recorded_cut_is_refused()
    {
        var request = Request("POST", "http", "example.test", 80, "/up", "") with { Body = new FlowBody(Encoding.ASCII.GetBytes("abc"), 10, null) };

        Assert.Contains("recorded cut (3 of 10 bytes)", Assert.Throws<ArgumentException>(() => ReplayRequest.Serialize(request)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET http://127.0.0.1:1/smuggled HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\nGET", "/")]
    [InlineData("GE T", "/")]
    [InlineData("GET", "/x HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /y")]
    [InlineData("GET", "/a b")]
    [InlineData("GET", "/caf\u00e9")]
    public void A_method_that_is_no_token_or_a_url_with_whitespace_or_control_characters_is_refused(string method, string path)
    {
        // A recording made from a file (HAR import) can hold anything: written into the request line, a CR LF would
        // start a second request the flow never showed.
        var request = Request(method, "http", "example.test", 80, path, "");

        Assert.Contains("not a token or its URL holds whitespace", Assert.Throws<ArgumentException>(() => ReplayRequest.Serialize(request)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_body_that_ended_early_is_refused_though_all_its_bytes_were_kept()
    {
        // The client died mid-body: the recording has the 3 bytes that passed, Length 3 and no hash (not IsTruncated).
        var request = Request("POST", "http", "example.test", 80, "/up", "", ("Host", "example.test"), ("Transfer-Encoding", "chunked")) with
        {
            Body = new FlowBody(Encoding.ASCII.GetBytes("abc"), 3, null),
        };

        Assert.Contains("ended after 3 bytes", Assert.Throws<ArgumentException>(() => ReplayRequest.Serialize(request)).Message, StringComparison.Ordinal);
    }

    private static FlowRequest Request(string method, string scheme, string host, int port, string path, string body, params (string Name, string Value)[] fields) => new()
    {
        Method = method,
        Scheme = scheme,
        Host = host,
        Port = port,
        Path = path,
        HttpVersion = "HTTP/1.1",
        Headers = Headers(fields),
        Body = FlowBody.FromBytes(Encoding.UTF8.GetBytes(body)),
    };

    private static HttpHeaders Headers(params (string Name, string Value)[] fields)
    {
        var headers = new HttpHeaders();
        foreach (var (name, value) in fields)
        {
            headers.Add(name, value);
        }

        return headers;
    }
}
