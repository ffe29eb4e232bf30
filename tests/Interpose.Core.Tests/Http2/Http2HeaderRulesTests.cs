using Interpose.Core.Http;
using Interpose.Core.Http2;

namespace Interpose.Core.Tests.Http2;

public class Http2HeaderRulesTests
{
    private static HttpHeader[] Fields(params string[] lines) => [.. lines.Select(l =>
    {
        int colon = l.IndexOf(": ", 1, StringComparison.Ordinal);
        return new HttpHeader(l[..colon], l[(colon + 2)..]);
    })];

    private static readonly string[] GoodRequest = [":method: GET", ":scheme: https", ":authority: example.com", ":path: /a?b=1", "accept: */*"];

    [Fact]
    public void Valid_request_is_accepted()
    {
        Http2RequestFields r = Http2HeaderRules.ValidateRequest(Fields(GoodRequest), 1);
        Assert.Equal(("GET", "https", "example.com", "/a?b=1"), (r.Method, r.Scheme, r.Authority, r.Path));
        Assert.Equal([new HttpHeader("accept", "*/*")], r.Fields);
    }

    // Each request is malformed per RFC 9113 §8.2 / §8.3 and must be rejected (stream error PROTOCOL_ERROR).
    public static TheoryData<string, string[]> MalformedRequests => new()
    {
        { "uppercase name (§8.2.1)", [.. GoodRequest, "Accept: x"] },
        { "space in name (§8.2.1)", [.. GoodRequest, "x y: 1"] },
        { "colon in a regular name (§8.2.1)", [.. GoodRequest, "x:y: 1"] },
        { "non-ASCII name (§8.2.1)", [.. GoodRequest, "x\u00e9: 1"] },
        { "CR in value (§8.2.1)", [.. GoodRequest, "x: a\rb"] },
        { "LF in value (§8.2.1)", [.. GoodRequest, "x: a\nb"] },
        { "NUL in value (§8.2.1)", [.. GoodRequest, "x: a\0b"] },
        { "leading space in value (§8.2.1)", [.. GoodRequest, "x:  a"] },
        { "trailing tab in value (§8.2.1)", [.. GoodRequest, "x: a\t"] },
        { "connection (§8.2.2)", [.. GoodRequest, "connection: keep-alive"] },
        { "keep-alive (§8.2.2)", [.. GoodRequest, "keep-alive: 5"] },
        { "proxy-connection (§8.2.2)", [.. GoodRequest, "proxy-connection: close"] },
        { "transfer-encoding (§8.2.2)", [.. GoodRequest, "transfer-encoding: chunked"] },
        { "upgrade (§8.2.2)", [.. GoodRequest, "upgrade: websocket"] },
        { "te other than trailers (§8.2.2)", [.. GoodRequest, "te: gzip"] },
        { "pseudo after regular (§8.3)", [":method: GET", ":scheme: https", "accept: x", ":path: /", ":authority: a"] },
        { "unknown pseudo (§8.3)", [.. GoodRequest[..4], ":foo: bar"] },
        { ":status in a request (§8.3)", [.. GoodRequest[..4], ":status: 200"] },
        { "duplicate :path (§8.3.1)", [.. GoodRequest[..4], ":path: /b"] },
        { "duplicate :method (§8.3.1)", [":method: GET", ":method: POST", ":scheme: https", ":path: /", ":authority: a"] },
        { "missing :method (§8.3.1)", [":scheme: https", ":path: /", ":authority: a"] },
        { "missing :scheme (§8.3.1)", [":method: GET", ":path: /", ":authority: a"] },
        { "missing :path (§8.3.1)", [":method: GET", ":scheme: https", ":authority: a"] },
        { "empty :path (§8.3.1)", [":method: GET", ":scheme: https", ":path: ", ":authority: a"] },
        { "path not origin-form (§8.3.1)", [":method: GET", ":scheme: https", ":path: http://x/", ":authority: a"] },
        { "space in :path (§8.3.1)", [":method: GET", ":scheme: https", ":path: /a b", ":authority: a"] },
        { "non-ASCII :path (§8.3.1)", [":method: GET", ":scheme: https", ":path: /caf\u00e9", ":authority: a"] },
        { "control character in :path (§8.3.1)", [":method: GET", ":scheme: https", ":path: /a\u007fb", ":authority: a"] },
        { "space in extended CONNECT :path (§8.3.1)", [":method: CONNECT", ":protocol: websocket", ":scheme: https", ":path: /a b", ":authority: a"] },
        { ":method not a token (§8.3.1, RFC 9110 §9.1)", [":method: GE(T", ":scheme: https", ":path: /", ":authority: a"] },
        { "empty :method (§8.3.1)", [":method: ", ":scheme: https", ":path: /", ":authority: a"] },
        { "asterisk path for GET (§8.3.1)", [":method: GET", ":scheme: https", ":path: *", ":authority: a"] },
        { "no authority and no host", [":method: GET", ":scheme: https", ":path: /"] },
        { "host differs from :authority (§8.3.1)", [.. GoodRequest, "host: evil.example"] },
        { "two host fields", [":method: GET", ":scheme: https", ":path: /", "host: a", "host: a"] },
        { "CONNECT with :path (§8.5)", [":method: CONNECT", ":authority: a:443", ":path: /"] },
        { "CONNECT with :scheme (§8.5)", [":method: CONNECT", ":authority: a:443", ":scheme: https"] },
        { "CONNECT without :authority (§8.5)", [":method: CONNECT"] },
        { ":protocol without CONNECT (RFC 8441)", [.. GoodRequest[..4], ":protocol: websocket"] },
        { "extended CONNECT without :path (RFC 8441)", [":method: CONNECT", ":protocol: websocket", ":scheme: https", ":authority: a"] },
    };

    [Theory]
    [MemberData(nameof(MalformedRequests))]
    public void Malformed_request_is_a_stream_protocol_error(string name, string[] fields)
    {
        _ = name;
        var e = Assert.Throws<Http2StreamException>(() => Http2HeaderRules.ValidateRequest(Fields(fields), 7));
        Assert.Equal((7, Http2ErrorCode.ProtocolError), (e.StreamId, e.ErrorCode));
    }

    public static TheoryData<string, string[]> AcceptedRequests => new()
    {
        { "te: trailers", [.. GoodRequest, "te: trailers"] },
        { "host equal to :authority (case-insensitive)", [.. GoodRequest, "host: EXAMPLE.com"] },
        { "host only", [":method: GET", ":scheme: https", ":path: /", "host: example.com"] },
        { "OPTIONS *", [":method: OPTIONS", ":scheme: https", ":path: *", ":authority: a"] },
        { "CONNECT", [":method: CONNECT", ":authority: a:443"] },
        { "extended CONNECT", [":method: CONNECT", ":protocol: websocket", ":scheme: https", ":path: /chat", ":authority: a"] },
        { "empty value", [.. GoodRequest, "x-empty: "] },
        { "inner whitespace", [.. GoodRequest, "x: a  b"] },
    };

    [Theory]
    [MemberData(nameof(AcceptedRequests))]
    public void Valid_edge_requests_are_accepted(string name, string[] fields)
    {
        _ = name;
        Assert.NotNull(Http2HeaderRules.ValidateRequest(Fields(fields), 1));
    }

    [Fact]
    public void H2_request_becomes_h1_with_host_first_and_cookies_joined()
    {
        Http2RequestFields r = Http2HeaderRules.ValidateRequest(Fields(
            ":method: POST", ":scheme: https", ":authority: example.com:8443", ":path: /submit",
            "cookie: a=1", "user-agent: t", "cookie: b=2; c=3", "host: example.com:8443", "te: trailers"), 1);
        HttpRequestHead head = Http2HeaderRules.ToHttp1Request(r);
        Assert.Equal(("POST", "/submit", System.Net.HttpVersion.Version11), (head.Method, head.Target, head.Version));

        // RFC 9113 §8.3.1: Host from :authority (replacing the h2 host field); §8.2.3: cookies joined with "; ".
        Assert.Equal(
            [new("host", "example.com:8443"), new("cookie", "a=1; b=2; c=3"), new("user-agent", "t"), new("te", "trailers")],
            head.Headers.ToList());
    }

    [Fact]
    public void H2_connect_becomes_authority_form()
    {
        HttpRequestHead head = Http2HeaderRules.ToHttp1Request(Http2HeaderRules.ValidateRequest(Fields(":method: CONNECT", ":authority: db.internal:5432"), 3));
        Assert.Equal(("CONNECT", "db.internal:5432"), (head.Method, head.Target));
        Assert.Equal("db.internal:5432", head.Headers.Get("Host"));
        Assert.Throws<NotSupportedException>(() => Http2HeaderRules.ToHttp1Request(Http2HeaderRules.ValidateRequest(
            Fields(":method: CONNECT", ":protocol: websocket", ":scheme: https", ":path: /", ":authority: a"), 5)));
    }

    [Fact]
    public void H2_response_becomes_h1_and_malformed_responses_are_rejected()
    {
        HttpResponseHead head = Http2HeaderRules.ToHttp1Response(Fields(":status: 204", "server: x", "set-cookie: a=1", "set-cookie: b=2"), 1);
        Assert.Equal((204, ""), (head.StatusCode, head.ReasonPhrase));
        Assert.Equal([new("server", "x"), new("set-cookie", "a=1"), new("set-cookie", "b=2")], head.Headers.ToList());

        foreach (string[] bad in new[]
        {
            new[] { "server: x" },
            [":status: 200", ":status: 200"],
            [":status: 2000"],
            [":status: 099"],
            [":status: 20x"],
            [":status: 101"],
            [":status: 200", ":path: /"],
            ["server: x", ":status: 200"],
            [":status: 200", "transfer-encoding: chunked"],
            [":status: 200", "Server: x"],
        })
        {
            Assert.Equal(Http2ErrorCode.ProtocolError, Assert.Throws<Http2StreamException>(() => Http2HeaderRules.ToHttp1Response(Fields(bad), 1)).ErrorCode);
        }
    }

    [Fact]
    public void Trailers_reject_pseudo_fields()
    {
        HttpHeaders t = Http2HeaderRules.ToHttp1Trailers(Fields("grpc-status: 0", "grpc-message: ok"), 1);
        Assert.Equal("0", t.Get("grpc-status"));
        Assert.Throws<Http2StreamException>(() => Http2HeaderRules.ToHttp1Trailers(Fields(":status: 200"), 1));
        Assert.Throws<Http2StreamException>(() => Http2HeaderRules.ToHttp1Trailers(Fields("connection: close"), 1));
    }

    [Fact]
    public void H1_request_becomes_h2_without_connection_specific_fields()
    {
        var head = new HttpRequestHead { Method = "GET", Target = "/p?q" };
        head.Headers.Add("Host", "Example.com");
        head.Headers.Add("Connection", "keep-alive, X-Hop");
        head.Headers.Add("Keep-Alive", "timeout=5");
        head.Headers.Add("X-Hop", "1");
        head.Headers.Add("Proxy-Connection", "keep-alive");
        head.Headers.Add("Upgrade", "h2c");
        head.Headers.Add("Transfer-Encoding", "chunked");
        head.Headers.Add("TE", "gzip, trailers;q=0.5");
        head.Headers.Add("Cookie", "a=1; b=2;c=3");
        head.Headers.Add("X-Custom", "Value");

        List<HttpHeader> fields = Http2HeaderRules.FromHttp1Request(head, "https");
        Assert.Equal(
            [
                new(":method", "GET"), new(":scheme", "https"), new(":authority", "Example.com"), new(":path", "/p?q"),
                new("te", "trailers"), new("cookie", "a=1"), new("cookie", "b=2"), new("cookie", "c=3"), new("x-custom", "Value"),
            ],
            fields);

        // What we produce passes our own validation, and the round trip joins the crumbs again.
        HttpRequestHead back = Http2HeaderRules.ToHttp1Request(Http2HeaderRules.ValidateRequest(fields, 1));
        Assert.Equal("a=1; b=2; c=3", back.Headers.Get("cookie"));
        Assert.Equal("Example.com", back.Headers.Get("host"));
    }

    [Fact]
    public void H1_te_without_trailers_is_dropped()
    {
        var head = new HttpRequestHead { Method = "GET", Target = "/" };
        head.Headers.Add("Host", "a");
        head.Headers.Add("TE", "gzip");
        Assert.DoesNotContain(Http2HeaderRules.FromHttp1Request(head, "https"), f => f.Name == "te");
    }

    [Theory]
    [InlineData("http://example.com:8080/x?y", "example.com:8080", "/x?y")]
    [InlineData("http://example.com", "example.com", "/")]
    [InlineData("http://example.com?q", "example.com", "/?q")]
    public void H1_absolute_form_gives_authority_and_path(string target, string authority, string path)
    {
        var head = new HttpRequestHead { Method = "GET", Target = target };
        head.Headers.Add("Host", "ignored.example");
        List<HttpHeader> fields = Http2HeaderRules.FromHttp1Request(head, "http");
        Assert.Contains(new HttpHeader(":authority", authority), fields);
        Assert.Contains(new HttpHeader(":path", path), fields);
    }

    [Fact]
    public void H1_connect_and_asterisk_requests()
    {
        var connect = new HttpRequestHead { Method = "CONNECT", Target = "a.example:443" };
        Assert.Equal([new(":method", "CONNECT"), new(":authority", "a.example:443")], Http2HeaderRules.FromHttp1Request(connect, "https"));

        var options = new HttpRequestHead { Method = "OPTIONS", Target = "*" };
        options.Headers.Add("Host", "a");
        Assert.Contains(new HttpHeader(":path", "*"), Http2HeaderRules.FromHttp1Request(options, "https"));

        var noHost = new HttpRequestHead { Method = "GET", Target = "/" };
        Assert.Throws<ArgumentException>(() => Http2HeaderRules.FromHttp1Request(noHost, "https"));
    }

    [Fact]
    public void H1_response_and_trailers_become_h2()
    {
        var head = new HttpResponseHead { StatusCode = 200, ReasonPhrase = "Fine" };
        head.Headers.Add("Content-Type", "text/plain");
        head.Headers.Add("Transfer-Encoding", "chunked");
        head.Headers.Add("Connection", "close");
        head.Headers.Add("Set-Cookie", "a=1; Path=/");
        Assert.Equal(
            [new(":status", "200"), new("content-type", "text/plain"), new("set-cookie", "a=1; Path=/")],
            Http2HeaderRules.FromHttp1Response(head));
        Assert.Throws<ArgumentException>(() => Http2HeaderRules.FromHttp1Response(new HttpResponseHead { StatusCode = 101 }));

        var trailers = new HttpHeaders();
        trailers.Add("Grpc-Status", "0");
        Assert.Equal([new("grpc-status", "0")], Http2HeaderRules.FromHttp1Trailers(trailers));
    }
}
