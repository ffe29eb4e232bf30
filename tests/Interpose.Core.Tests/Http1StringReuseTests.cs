using System.Buffers;
using System.Text;
using Interpose.Core.Http;

namespace Interpose.Core.Tests;

/// <summary>A connection's scan hands the next head the previous head's strings where the bytes are the same.</summary>
public class Http1StringReuseTests
{
    private const string Request =
        "GET /items?page=2 HTTP/1.1\r\nHost: api.example.test\r\nUser-Agent: client/1.0\r\nAccept: */*\r\n" +
        "Cookie: session=4f1c2a9e0b\r\n\r\n";

    [Fact]
    public void A_repeated_request_head_gets_the_same_strings()
    {
        Http1HeadScan scan = default;
        HttpRequestHead first = ParseRequest(Request, ref scan);
        HttpRequestHead second = ParseRequest(Request, ref scan);

        Assert.Same(first.Target, second.Target);
        for (int i = 0; i < first.Headers.Count; i++)
        {
            Assert.Same(first.Headers[i].Value, second.Headers[i].Value);
        }
    }

    [Fact]
    public void A_changed_value_or_target_is_read_anew()
    {
        Http1HeadScan scan = default;
        HttpRequestHead first = ParseRequest(Request, ref scan);
        HttpRequestHead second = ParseRequest(Request.Replace("page=2", "page=3", StringComparison.Ordinal).Replace("4f1c", "5f1c", StringComparison.Ordinal), ref scan);

        Assert.Equal("/items?page=3", second.Target);
        Assert.Equal("session=5f1c2a9e0b", second.Headers.Get("Cookie"));
        Assert.Equal("session=4f1c2a9e0b", first.Headers.Get("Cookie"));

        // The unchanged fields around it are still shared.
        Assert.Same(first.Headers.Get("Accept"), second.Headers.Get("Accept"));
    }

    [Fact]
    public void A_value_moved_to_another_position_is_still_correct()
    {
        Http1HeadScan scan = default;
        ParseRequest("GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Two: 2\r\n\r\n", ref scan);
        HttpRequestHead second = ParseRequest("GET / HTTP/1.1\r\nHost: a\r\nX-Two: 2\r\nX-One: 1\r\n\r\n", ref scan);

        Assert.Equal([new HttpHeader("Host", "a"), new HttpHeader("X-Two", "2"), new HttpHeader("X-One", "1")], second.Headers);
    }

    [Fact]
    public void A_response_head_on_the_same_scan_reuses_its_values()
    {
        const string response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n";
        Http1HeadScan scan = default;
        Assert.True(Http1Parser.TryParseResponseHead(Sequence(response), Http1Limits.Default, ref scan, out HttpResponseHead? first, out _));
        Assert.True(Http1Parser.TryParseResponseHead(Sequence(response), Http1Limits.Default, ref scan, out HttpResponseHead? second, out _));

        Assert.Same(first.Headers.Get("Content-Type"), second.Headers.Get("Content-Type"));
    }

    [Fact]
    public void Obs_text_values_parse_the_same_on_every_head()
    {
        // RFC 9110 §5.5: obs-text (0x80-0xFF) is read as Latin-1; such values are never shared, always read.
        byte[] bytes = Encoding.Latin1.GetBytes("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\u00e9\r\n\r\n");
        Http1HeadScan scan = default;
        Assert.True(Http1Parser.TryParseRequestHead(new ReadOnlySequence<byte>(bytes), Http1Limits.Default, ref scan, out HttpRequestHead? first, out _));
        Assert.True(Http1Parser.TryParseRequestHead(new ReadOnlySequence<byte>(bytes), Http1Limits.Default, ref scan, out HttpRequestHead? second, out _));

        Assert.Equal("caf\u00e9", first.Headers.Get("X-Name"));
        Assert.Equal("caf\u00e9", second.Headers.Get("X-Name"));
    }

    [Fact]
    public void Long_values_are_not_kept_between_heads()
    {
        // What an idle connection keeps is bounded: values over 256 bytes are read anew every time.
        string request = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + new string('v', 257) + "\r\nX-Short: " + new string('v', 256) + "\r\n\r\n";
        Http1HeadScan scan = default;
        HttpRequestHead first = ParseRequest(request, ref scan);
        HttpRequestHead second = ParseRequest(request, ref scan);

        Assert.NotSame(first.Headers.Get("X-Long"), second.Headers.Get("X-Long"));
        Assert.Equal(first.Headers.Get("X-Long"), second.Headers.Get("X-Long"));
        Assert.Same(first.Headers.Get("X-Short"), second.Headers.Get("X-Short"));
    }

    [Fact]
    public void Reset_keeps_the_strings_and_the_one_shot_parse_shares_nothing()
    {
        Http1HeadScan scan = default;
        HttpRequestHead first = ParseRequest(Request, ref scan);
        scan.Reset();
        Assert.Same(first.Target, ParseRequest(Request, ref scan).Target);

        Assert.True(Http1Parser.TryParseRequestHead(Sequence(Request), Http1Limits.Default, out HttpRequestHead? a, out _));
        Assert.True(Http1Parser.TryParseRequestHead(Sequence(Request), Http1Limits.Default, out HttpRequestHead? b, out _));
        Assert.NotSame(a.Target, b.Target);
    }

    private static HttpRequestHead ParseRequest(string raw, ref Http1HeadScan scan)
    {
        Assert.True(Http1Parser.TryParseRequestHead(Sequence(raw), Http1Limits.Default, ref scan, out HttpRequestHead? head, out _));
        return head;
    }

    private static ReadOnlySequence<byte> Sequence(string ascii) => new(Encoding.ASCII.GetBytes(ascii));
}
