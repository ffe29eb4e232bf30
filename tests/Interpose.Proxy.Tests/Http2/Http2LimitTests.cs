using Interpose.Core.Http2;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// The HTTP/2 attack limits, with raw frames over h2c prior knowledge in a CONNECT tunnel. The proxy's clock is a
/// <see cref="ManualClock"/> that never moves, so every budget window stays open for the whole test: the outcome
/// cannot depend on how fast the machine is.
/// </summary>
public sealed class Http2LimitTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Rapid_reset_ends_the_connection_with_enhance_your_calm()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync();
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        // CVE-2023-44487: open a stream and cancel it at once, more often than the budget allows.
        for (var i = 0; i <= Http2Limits.ResetBudgetPerWindow; i++)
        {
            var id = (2 * i) + 1;
            client.Headers(id, "GET", "/hello", endStream: true);
            client.Rst(id);
        }

        await client.FlushAsync();

        var goAway = await client.ReadUntilAsync(f => f.Type == FrameType.GoAway);
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.EnhanceYourCalm, goAway.ErrorCode);
    }

    [Fact]
    public async Task Streams_the_proxy_must_reset_itself_end_the_connection_with_enhance_your_calm()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync();
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        // CVE-2025-8671 (MadeYouReset): streams the client never resets but the proxy must, each from the stream's own
        // task (END_STREAM with the head and a Content-Length above 0, RFC 9113 §8.1.1), more often than the budget allows.
        for (var i = 0; i <= Http2Limits.ResetBudgetPerWindow; i++)
        {
            client.Headers((2 * i) + 1, "POST", "/echo", endStream: true, ("content-length", "1"));
        }

        await client.FlushAsync();

        var resets = 0;
        var goAway = await client.ReadUntilAsync(f =>
        {
            resets += f.Type == FrameType.RstStream ? 1 : 0;
            return f.Type == FrameType.GoAway;
        });
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.EnhanceYourCalm, goAway.ErrorCode);
        Assert.InRange(resets, Http2Limits.ResetBudgetPerWindow, Http2Limits.ResetBudgetPerWindow + 1);
    }

    [Fact]
    public async Task Ping_flood_ends_the_connection_with_enhance_your_calm()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync();
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        for (var i = 0; i <= Http2Limits.ControlFrameBudgetPerWindow; i++)
        {
            client.Ping((ulong)i);
        }

        await client.FlushAsync();

        var acks = 0;
        var goAway = await client.ReadUntilAsync(f =>
        {
            acks += f.Type == FrameType.Ping ? 1 : 0;
            return f.Type == FrameType.GoAway;
        });
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.EnhanceYourCalm, goAway.ErrorCode);

        // The initial SETTINGS counts too: fewer PINGs than the budget were answered.
        Assert.InRange(acks, 1, Http2Limits.ControlFrameBudgetPerWindow);
    }

    [Fact]
    public async Task Continuation_flood_ends_the_connection_with_protocol_error()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync();
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        // CVE-2024-27316: a HEADERS without END_HEADERS, then CONTINUATION frames that never end the block.
        client.RawFrame(FrameType.Headers, FrameFlags.EndStream, 1, [0x82]);
        for (var i = 0; i <= Http2Limits.MaxContinuationFrames; i++)
        {
            client.RawFrame(FrameType.Continuation, FrameFlags.None, 1, [0x84]);
        }

        await client.FlushAsync();

        var goAway = await client.ReadUntilAsync(f => f.Type == FrameType.GoAway);
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.ProtocolError, goAway.ErrorCode);
    }

    [Fact]
    public async Task Streams_beyond_the_concurrency_limit_are_refused()
    {
        await using var origin = await Origins.StartPlainAsync();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = 0;
        var allHeld = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = await StartProxyAsync(new HoldRequests(release.Task, () =>
        {
            if (Interlocked.Increment(ref held) == Http2Limits.MaxConcurrentStreams)
            {
                allHeld.TrySetResult();
            }
        }));
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        try
        {
            for (var i = 0; i < Http2Limits.MaxConcurrentStreams; i++)
            {
                client.Headers((2 * i) + 1, "GET", "/hello", endStream: true);
            }

            await client.FlushAsync();
            await allHeld.Task.WaitAsync(BoundedRead.Limit);

            var extra = (2 * Http2Limits.MaxConcurrentStreams) + 1;
            client.Headers(extra, "GET", "/hello", endStream: true);
            await client.FlushAsync();
            var refused = await client.ReadUntilAsync(f => f.Type == FrameType.RstStream);
            Assert.NotNull(refused);
            Assert.Equal(extra, refused.StreamId);
            Assert.Equal(Http2ErrorCode.RefusedStream, refused.ErrorCode);

            // The held streams still complete once released.
            release.SetResult();
            var answered = await client.ReadUntilAsync(f => f.Type == FrameType.Headers && f.StreamId == 1);
            Assert.NotNull(answered);
        }
        finally
        {
            // Held exchanges would otherwise keep the proxy's shutdown waiting (its clock never reaches the deadline).
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task Data_beyond_the_declared_content_length_resets_the_stream()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync();
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        // RFC 9113 §8.1.1: smuggling a second request after a short Content-Length must not reach the HTTP/1.1 origin.
        client.Headers(1, "POST", "/echo", endStream: false, ("content-length", "5"));
        client.Data(1, "hello GET /x HTTP/1.1\r\n\r\n"u8.ToArray(), endStream: true);
        await client.FlushAsync();

        var reset = await client.ReadUntilAsync(f => f.Type == FrameType.RstStream && f.StreamId == 1);
        Assert.NotNull(reset);
        Assert.Equal(Http2ErrorCode.ProtocolError, reset.ErrorCode);
    }

    [Fact]
    public async Task Data_beyond_a_list_form_content_length_never_reach_the_origin()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await StartProxyAsync();
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        // RFC 9110 §8.6: "5, 5" is a Content-Length of 5, as the HTTP/1.1 origin is told; the DATA after the fifth octet
        // would be a second request to it.
        client.Headers(1, "POST", "/a", endStream: false, ("content-length", "5, 5"));
        client.Data(1, "helloGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray(), endStream: true);
        await client.FlushAsync();

        var first = await client.ReadUntilAsync(f => f.StreamId == 1 && f.Type is FrameType.RstStream or FrameType.Headers);
        Assert.NotNull(first);
        Assert.Equal(FrameType.RstStream, first.Type);
        Assert.Equal(Http2ErrorCode.ProtocolError, first.ErrorCode);

        // The same list with a body of that length is a request like any other.
        client.Headers(3, "POST", "/b", endStream: false, ("content-length", "5, 5"));
        client.Data(3, "hello"u8.ToArray(), endStream: true);
        await client.FlushAsync();
        Assert.Equal((true, "ok"), await Http2ExchangeTests.ReadResponseAsync(client, 3));

        var received = origin.ReceivedText;
        Assert.Contains("POST /b HTTP/1.1\r\n", received, StringComparison.Ordinal);
        Assert.DoesNotContain("/smuggled", received, StringComparison.Ordinal);
    }

    /// <param name="afterAStream">A stream ran and ended first: the stream that ends the last one starts the keep-alive
    /// timeout itself (the reader loop is not woken for it), so without that the connection would never time out.</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_idle_connection_ends_with_a_graceful_goaway(bool afterAStream)
    {
        var idle = TimeSpan.FromSeconds(77);
        var clock = new ManualClock();
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.TimeProvider = clock;
            o.Timeouts.IdleKeepAlive = idle;
        });
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        await client.SettledAsync();
        client.Ping(7);
        await client.FlushAsync();
        Assert.NotNull(await client.ReadUntilAsync(f => f.Type == FrameType.Ping));

        // No stream was opened: the idle timer armed after the preface, and the PING did not restart it.
        await clock.ArmedAsync(idle).WaitAsync(BoundedRead.Limit);
        if (afterAStream)
        {
            client.Headers(1, "GET", "/hello", endStream: true);
            await client.FlushAsync();
            Assert.Equal((true, "hello from origin"), await Http2ExchangeTests.ReadResponseAsync(client, 1));

            // Armed a second time once the stream ended, while the reader waits for frames that do not come.
            await clock.ArmedAsync(idle, times: 2).WaitAsync(BoundedRead.Limit);
        }

        clock.Advance(idle);

        var goAway = await client.ReadUntilAsync(f => f.Type == FrameType.GoAway);
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.NoError, goAway.ErrorCode);
        Assert.Equal(afterAStream ? 1 : 0, goAway.LastStreamId);
        Assert.Null(await client.ReadFrameAsync());
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

    /// <summary>Holds every request in its RequestHeaders hook until released.</summary>
    private sealed class HoldRequests(Task release, Action held) : ProxyAddon
    {
        public override string Name => "hold";

        public override async ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            held();
            await release;
        }
    }
}
