using System.Net;
using Interpose.Core.Http;

namespace Interpose.Core.Tests;

public class HopByHopTests
{
    [Fact]
    public void Removes_the_standard_hop_by_hop_fields_and_keeps_end_to_end_ones()
    {
        HttpHeaders h = Headers(
            ("Host", "a"), ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"), ("Transfer-Encoding", "chunked"), ("Upgrade", "websocket"), ("Proxy-Authorization", "Basic x"),
            ("HTTP2-Settings", "AAMAAABk"), ("Trailer", "X-Sum"), ("Accept", "*/*"));
        HopByHop.Remove(h);
        Assert.Equal([new HttpHeader("Host", "a"), new HttpHeader("Trailer", "X-Sum"), new HttpHeader("Accept", "*/*")], h);
    }

    [Fact]
    public void Removes_every_field_named_by_connection_across_lines_and_case()
    {
        HttpHeaders h = Headers(("Connection", "X-Foo, , x-bar"), ("connection", "X-Baz"), ("x-foo", "1"), ("X-BAR", "2"), ("X-Baz", "3"), ("X-Keep", "4"));
        HopByHop.Remove(h);
        Assert.Equal([new HttpHeader("X-Keep", "4")], h);
    }

    [Fact]
    public void Fields_named_before_their_connection_line_go_too_and_the_rest_keep_their_order()
    {
        HttpHeaders h = Headers(("X-A", "1"), ("Close", "reserved"), ("Accept", "*/*"), ("Connection", "close, x-a"), ("X-B", "2"));
        HopByHop.Remove(h);
        Assert.Equal([new HttpHeader("Accept", "*/*"), new HttpHeader("X-B", "2")], h);
    }

    [Fact]
    public void Keep_transfer_encoding_keeps_it_in_place_unless_connection_names_it()
    {
        HttpHeaders kept = Headers(("Host", "a"), ("Transfer-Encoding", "chunked"), ("TE", "trailers"), ("Accept", "*/*"));
        HopByHop.Remove(kept, keepTransferEncoding: true);
        Assert.Equal([new HttpHeader("Host", "a"), new HttpHeader("Transfer-Encoding", "chunked"), new HttpHeader("Accept", "*/*")], kept);

        // Named by Connection it goes as any named field; the relay's framing rules put back the chunked framing it sends.
        HttpHeaders named = Headers(("Transfer-Encoding", "chunked"), ("Connection", "Transfer-Encoding"), ("Accept", "*/*"));
        HopByHop.Remove(named, keepTransferEncoding: true);
        Assert.Equal([new HttpHeader("Accept", "*/*")], named);
    }

    [Fact]
    public void Connection_cannot_strip_host_or_content_length()
    {
        HttpHeaders h = Headers(("Host", "a"), ("Content-Length", "5"), ("Connection", "Host, Content-Length, X-A"), ("X-A", "1"));
        HopByHop.Remove(h);
        Assert.Equal([new HttpHeader("Host", "a"), new HttpHeader("Content-Length", "5")], h);
    }

    [Fact]
    public void Keep_upgrade_keeps_upgrade_and_sends_connection_upgrade()
    {
        HttpHeaders h = Headers(("Host", "a"), ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "websocket"), ("HTTP2-Settings", "x"), ("Sec-WebSocket-Key", "k"));
        HopByHop.Remove(h, keepUpgrade: true);
        Assert.Equal([new HttpHeader("Host", "a"), new HttpHeader("Upgrade", "websocket"), new HttpHeader("Sec-WebSocket-Key", "k"), new HttpHeader("Connection", "upgrade")], h);
    }

    [Fact]
    public void Keep_upgrade_without_upgrade_field_adds_nothing()
    {
        HttpHeaders h = Headers(("Host", "a"), ("Connection", "close"));
        HopByHop.Remove(h, keepUpgrade: true);
        Assert.Equal([new HttpHeader("Host", "a")], h);
    }

    [Theory]
    [InlineData("Upgrade", "websocket", true)]
    [InlineData("keep-alive, UPGRADE", "websocket", true)]
    [InlineData("keep-alive", "websocket", false)]
    [InlineData("upgrade", null, false)]
    [InlineData(null, "websocket", false)]
    [InlineData("upgraded", "websocket", false)]
    [InlineData("Upgrade, HTTP2-Settings", "h2c", false)]
    [InlineData("Upgrade, HTTP2-Settings", "H2C", false)]
    [InlineData("Upgrade", "h2c, websocket", true)]
    [InlineData("Upgrade", "", false)]
    public void Is_upgrade_request(string? connection, string? upgrade, bool expected)
    {
        var head = new HttpRequestHead();
        if (connection is not null)
        {
            head.Headers.Add("Connection", connection);
        }

        if (upgrade is not null)
        {
            head.Headers.Add("Upgrade", upgrade);
        }

        Assert.Equal(expected, HopByHop.IsUpgradeRequest(head));
    }

    [Theory]
    [InlineData("1.1", null, true)]
    [InlineData("1.1", "keep-alive", true)]
    [InlineData("1.1", "close", false)]
    [InlineData("1.1", "Upgrade, Close", false)]
    [InlineData("1.0", null, false)]
    [InlineData("1.0", "keep-alive", true)]
    [InlineData("1.0", "Keep-Alive", true)]
    [InlineData("1.0", "keep-alive, close", false)]
    [InlineData("2.0", null, false)]
    public void Keep_alive_matrix(string version, string? connection, bool expected)
    {
        var h = new HttpHeaders();
        if (connection is not null)
        {
            h.Add("Connection", connection);
        }

        Assert.Equal(expected, HopByHop.KeepAlive(Version.Parse(version), h));
    }

    [Fact]
    public void Keep_alive_reads_every_connection_line()
    {
        HttpHeaders h = Headers(("Connection", "foo"), ("Connection", "close"));
        Assert.False(HopByHop.KeepAlive(HttpVersion.Version11, h));
    }

    private static HttpHeaders Headers(params (string Name, string Value)[] fields)
    {
        var h = new HttpHeaders();
        foreach ((string name, string value) in fields)
        {
            h.Add(name, value);
        }

        return h;
    }
}
