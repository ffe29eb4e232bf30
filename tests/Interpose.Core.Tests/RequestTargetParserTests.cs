using Interpose.Core.Http;

namespace Interpose.Core.Tests;

public class RequestTargetParserTests
{
    [Theory]
    [InlineData("GET", "/", RequestTargetForm.Origin, null, null, 0, "/", null)]
    [InlineData("GET", "/a/b?c=d&e=%20", RequestTargetForm.Origin, null, null, 0, "/a/b?c=d&e=%20", null)]
    [InlineData("GET", "http://Example.TEST/x", RequestTargetForm.Absolute, "http", "example.test", 80, "/x", "example.test")]
    [InlineData("GET", "HTTPS://example.test", RequestTargetForm.Absolute, "https", "example.test", 443, "/", "example.test")]
    [InlineData("GET", "http://example.test?q", RequestTargetForm.Absolute, "http", "example.test", 80, "/?q", "example.test")]
    [InlineData("GET", "http://example.test:8080/p?q", RequestTargetForm.Absolute, "http", "example.test", 8080, "/p?q", "example.test:8080")]
    [InlineData("GET", "https://example.test:80/", RequestTargetForm.Absolute, "https", "example.test", 80, "/", "example.test:80")]
    [InlineData("GET", "http://10.0.0.1:81/", RequestTargetForm.Absolute, "http", "10.0.0.1", 81, "/", "10.0.0.1:81")]
    [InlineData("GET", "http://[::1]/", RequestTargetForm.Absolute, "http", "::1", 80, "/", "[::1]")]
    [InlineData("GET", "http://[2001:db8::7]:8443/a", RequestTargetForm.Absolute, "http", "2001:db8::7", 8443, "/a", "[2001:db8::7]:8443")]
    [InlineData("CONNECT", "example.test:443", RequestTargetForm.Authority, null, "example.test", 443, "", "example.test:443")]
    [InlineData("CONNECT", "[::1]:8443", RequestTargetForm.Authority, null, "::1", 8443, "", "[::1]:8443")]
    [InlineData("CONNECT", "my_host.local:1", RequestTargetForm.Authority, null, "my_host.local", 1, "", "my_host.local:1")]
    [InlineData("CONNECT", "example.test:65535", RequestTargetForm.Authority, null, "example.test", 65535, "", "example.test:65535")]
    [InlineData("OPTIONS", "*", RequestTargetForm.Asterisk, null, null, 0, "*", null)]
    public void Valid_targets(string method, string target, RequestTargetForm form, string? scheme, string? host, int port, string pathAndQuery, string? authority)
    {
        RequestTarget t = RequestTargetParser.Parse(method, target);
        Assert.Equal(new RequestTarget(form, scheme, host, port, pathAndQuery), t);
        Assert.Equal(authority, t.Authority);
    }

    [Theory]
    [InlineData("GET", "")]
    [InlineData("GET", "*")]
    [InlineData("GET", "example.test:443")]
    [InlineData("GET", "a/b")]
    [InlineData("GET", "/a b")]
    [InlineData("GET", "/a\r\nb")]
    [InlineData("GET", "/a\u0000")]
    [InlineData("GET", "/caf\u00e9")]
    [InlineData("GET", "/a#frag")]
    [InlineData("GET", "ftp://example.test/")]
    [InlineData("GET", "http:/example.test/")]
    [InlineData("GET", "http://")]
    [InlineData("GET", "http:///path")]
    [InlineData("GET", "http://user:pass@example.test/")]
    [InlineData("GET", "http://example.test@evil.test/")]
    [InlineData("GET", "http://example.test:/")]
    [InlineData("GET", "http://example.test:0/")]
    [InlineData("GET", "http://example.test:65536/")]
    [InlineData("GET", "http://example.test:65616/")]
    [InlineData("GET", "http://example.test:4294967376/")]
    [InlineData("GET", "http://example.test:-1/")]
    [InlineData("GET", "http://example.test:8a/")]
    [InlineData("GET", "http://exa%6dple.test/")]
    [InlineData("GET", "http://[::1/")]
    [InlineData("GET", "http://[fe80::1%25eth0]/")]
    [InlineData("GET", "http://[v1.fe]/")]
    [InlineData("GET", "http://[1.2.3.4]/")]
    [InlineData("GET", "http://[::1]x/")]
    [InlineData("CONNECT", "example.test")]
    [InlineData("CONNECT", "example.test:")]
    [InlineData("CONNECT", "/")]
    [InlineData("CONNECT", "http://example.test:443")]
    [InlineData("CONNECT", "example.test:443/path")]
    [InlineData("CONNECT", "example.test:0")]
    [InlineData("CONNECT", "example.test:99999")]
    [InlineData("CONNECT", "example.test:000443")]
    [InlineData("CONNECT", "[::1]")]
    [InlineData("CONNECT", "a b:443")]
    [InlineData("CONNECT", "exa\rmple.test:443")]
    [InlineData("CONNECT", ":443")]
    [InlineData("OPTIONS", "**")]
    public void Invalid_targets_are_rejected(string method, string target)
    {
        var ex = Assert.Throws<HttpProtocolException>(() => RequestTargetParser.Parse(method, target));
        Assert.Equal(RejectionReason.InvalidRequestTarget, ex.Reason);
        Assert.Equal(400, ex.StatusCode);
    }

    [Fact]
    public void Host_longer_than_253_is_rejected()
    {
        string ok = new string('a', 253);
        Assert.Equal(ok, RequestTargetParser.Parse("CONNECT", ok + ":443").Host);
        Assert.Throws<HttpProtocolException>(() => RequestTargetParser.Parse("CONNECT", ok + "a:443"));
    }

    [Theory]
    [InlineData("example.test", false, true)]
    [InlineData("example.test:8080", false, true)]
    [InlineData("example.test", true, false)]
    [InlineData("[::1]:1", true, true)]
    [InlineData("", false, false)]
    [InlineData("a b", false, false)]
    public void Authority_validation(string authority, bool portRequired, bool expected)
    {
        Assert.Equal(expected, RequestTargetParser.IsValidAuthority(authority, portRequired));
    }

    [Theory]
    [InlineData("http://h.test/a/./b/../c/%7Euser/%41?q=%7E", "/a/./b/../c/%7Euser/%41?q=%7E")] // as written, no normalizing
    [InlineData("https://h.test:8443", "/")]
    [InlineData("http://h.test?x=1", "/?x=1")]
    [InlineData("http://[::1]:8080/p?q", "/p?q")]
    [InlineData("http://h.test/p#frag", "/p")]
    [InlineData("http://h.test/a b", null)]
    [InlineData("http://h.test/caf\u00E9", null)]
    [InlineData("http://h.test\\evil/p", null)]
    public void The_raw_path_and_query_of_a_url_is_taken_as_written(string url, string? expected) =>
        Assert.Equal(expected, RequestTargetParser.RawPathAndQuery(url));
}
