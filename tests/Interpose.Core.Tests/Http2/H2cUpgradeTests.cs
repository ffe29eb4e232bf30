using Interpose.Core.Http;
using Interpose.Core.Http2;

namespace Interpose.Core.Tests.Http2;

public class H2cUpgradeTests
{
    private static HttpRequestHead Head(params (string Name, string Value)[] fields)
    {
        var head = new HttpRequestHead { Method = "POST", Target = "/p" };
        head.Headers.Add("Host", "example.test");
        foreach (var (name, value) in fields)
        {
            head.Headers.Add(name, value);
        }

        return head;
    }

    [Theory]
    [InlineData("Upgrade, HTTP2-Settings", "h2c", true)]
    [InlineData("upgrade", "websocket, H2C", true)]
    [InlineData("keep-alive", "h2c", false)]
    [InlineData("Upgrade", "websocket", false)]
    public void Is_requested_when_connection_names_upgrade_and_upgrade_lists_h2c(string connection, string upgrade, bool expected)
    {
        Assert.Equal(expected, H2cUpgrade.IsRequested(Head(("Connection", connection), ("Upgrade", upgrade))));
    }

    [Fact]
    public void Is_not_requested_by_http10()
    {
        var head = Head(("Connection", "Upgrade"), ("Upgrade", "h2c"));
        head.Version = System.Net.HttpVersion.Version10;
        Assert.False(H2cUpgrade.IsRequested(head));
    }

    [Theory]
    [InlineData("AAMAAABkAAQCAAAAAAIAAAAA")] // what curl 7.88 sends
    [InlineData("AAMAAABkAAQCAAAAAAIAAAAA==")] // padded: tolerated
    public void Decodes_curls_settings(string value)
    {
        Assert.True(H2cUpgrade.TryReadSettings(Head(("Connection", "Upgrade, HTTP2-Settings"), ("HTTP2-Settings", value)).Headers, out var settings, out var problem), problem);
        Assert.Equal(
            [new Http2Setting(SettingsParameter.MaxConcurrentStreams, 100), new Http2Setting(SettingsParameter.InitialWindowSize, 32 * 1024 * 1024), new Http2Setting(SettingsParameter.EnablePush, 0)],
            settings);
    }

    [Fact]
    public void An_empty_payload_is_valid()
    {
        Assert.True(H2cUpgrade.TryReadSettings(Head(("Connection", "Upgrade, HTTP2-Settings"), ("HTTP2-Settings", "")).Headers, out var settings, out _));
        Assert.Empty(settings);
    }

    [Theory]
    [InlineData("AAMAAABk AAQCAAAAAAIAAAAA")] // a space inside
    [InlineData("AAMAAABk+AQCAAAAAAIAAAAA")] // '+' is base64, not base64url
    [InlineData("AAMAAABkA")] // not a whole number of octets
    [InlineData("AAMAAAA")] // 5 octets
    [InlineData("AAUAAAAB")] // MAX_FRAME_SIZE = 1
    [InlineData("AASAAAAA")] // INITIAL_WINDOW_SIZE = 2^31
    public void Rejects_a_value_that_is_not_a_valid_settings_payload(string value)
    {
        Assert.False(H2cUpgrade.TryReadSettings(Head(("Connection", "Upgrade, HTTP2-Settings"), ("HTTP2-Settings", value)).Headers, out var settings, out var problem));
        Assert.Empty(settings);
        Assert.NotNull(problem);
    }

    [Fact]
    public void Rejects_a_missing_a_repeated_or_an_unnamed_field()
    {
        Assert.False(H2cUpgrade.TryReadSettings(Head(("Connection", "Upgrade, HTTP2-Settings")).Headers, out _, out _));
        Assert.False(H2cUpgrade.TryReadSettings(Head(("Connection", "Upgrade, HTTP2-Settings"), ("HTTP2-Settings", ""), ("HTTP2-Settings", "")).Headers, out _, out _));
        Assert.False(H2cUpgrade.TryReadSettings(Head(("Connection", "Upgrade"), ("HTTP2-Settings", "")).Headers, out _, out _));
    }

    [Fact]
    public void Stream_one_drops_the_upgrade_fields_and_gives_a_chunked_body_its_length()
    {
        var head = Head(("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", ""), ("Transfer-Encoding", "chunked"), ("X-Keep", "1"));

        var request = H2cUpgrade.ToStreamOne(head, chunked: true, bodyLength: 12);

        Assert.Equal(("POST", "http", "example.test", "/p"), (request.Method, request.Scheme, request.Authority, request.Path));
        Assert.Equal([new HttpHeader("x-keep", "1"), new HttpHeader("content-length", "12")], request.Fields);
    }
}
