using Interpose.Core.Http2;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// A client's HEADERS that break a rule of RFC 9113 reset that stream alone with PROTOCOL_ERROR, before any hook or
/// origin sees the request, and the connection goes on with its HPACK table in step. Raw frames over h2c in a tunnel;
/// the proxy's clock is a <see cref="ManualClock"/> that never moves.
/// </summary>
public sealed class Http2MalformedHeadersTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_headers_frame_that_depends_on_itself_is_reset_and_its_fields_still_enter_the_table()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync();
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        // The client's encoder indexes every field it sends (RFC 7541 §6.2.1): x-a with stream 1, x-b with stream 3.
        client.Headers(1, "GET", "/hello", endStream: true, ("x-a", "1"));
        client.HeadersWithPriority(3, dependency: 3, "GET", "/hello", endStream: true, ("x-b", "2"));

        // Stream 5 names x-b by its index alone: only a decoder that decoded stream 3's block knows what it is.
        client.Headers(5, "GET", "/headers", endStream: true, ("x-b", "2"));
        await client.FlushAsync();

        var reset = await client.ReadUntilAsync(f => f.StreamId == 3);
        Assert.NotNull(reset);
        Assert.Equal(FrameType.RstStream, reset.Type);
        Assert.Equal(Http2ErrorCode.ProtocolError, reset.ErrorCode);

        var (headers, body) = await Http2ExchangeTests.ReadResponseAsync(client, 5);
        Assert.True(headers);
        Assert.Contains("x-b: 2\n", body, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("x-a", body, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("GET", "/a b")]
    [InlineData("GET", "/caf\u00e9")]
    [InlineData("GE(T", "/")]
    public async Task A_method_or_path_that_cannot_be_a_request_line_resets_the_stream(string method, string path)
    {
        var requests = 0;
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync(new Hooks { OnRequestHeaders = _ => Interlocked.Increment(ref requests) });
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        // RFC 9113 §8.3.1, RFC 9110 §9.1: a malformed request, never forwarded (it would fail as an internal 502).
        client.Headers(1, method, path, endStream: true);
        await client.FlushAsync();
        var reset = await client.ReadUntilAsync(f => f.StreamId == 1);
        Assert.NotNull(reset);
        Assert.Equal(FrameType.RstStream, reset.Type);
        Assert.Equal(Http2ErrorCode.ProtocolError, reset.ErrorCode);

        client.Headers(3, "GET", "/hello", endStream: true);
        await client.FlushAsync();
        Assert.Equal((true, "hello from origin"), await Http2ExchangeTests.ReadResponseAsync(client, 3));

        // Only stream 3 reached the hooks.
        Assert.Equal(1, Volatile.Read(ref requests));
    }

    private Task<TestProxy> StartProxyAsync(ProxyAddon? addon = null) => TestProxy.StartAsync(output, o =>
    {
        o.Http2 = true;
        o.TimeProvider = new ManualClock();
        if (addon is not null)
        {
            o.Addons.Add(addon);
        }
    });
}
