using Interpose.Core.Http2;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// The HTTP/2 connection's own timeouts, on a <see cref="ManualClock"/>: each test waits until the proxy armed the
/// timer with the documented bound (so the timer exists), moves time past it and reads what the proxy sent. Options
/// whose defaults equal a bound under test are moved aside, so that only the timer under test can match.
/// </summary>
public sealed class Http2TimeoutTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Settings_never_acknowledged_end_the_connection_with_settings_timeout()
    {
        var clock = new ManualClock();
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync(clock);
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        await clock.ArmedAsync(Http2Limits.SettingsAckTimeout).WaitAsync(BoundedRead.Limit);
        clock.Advance(Http2Limits.SettingsAckTimeout);

        var goAway = await client.ReadUntilAsync(f => f.Type == FrameType.GoAway);
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.SettingsTimeout, goAway.ErrorCode);
        Assert.Null(await client.ReadUntilAsync(_ => false));
    }

    [Fact]
    public async Task Acknowledged_settings_keep_the_connection_past_the_settings_timeout()
    {
        var clock = new ManualClock();
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync(clock);
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        await clock.ArmedAsync(Http2Limits.SettingsAckTimeout).WaitAsync(BoundedRead.Limit);
        await client.SettledAsync();
        clock.Advance(Http2Limits.SettingsAckTimeout);

        client.Ping(2);
        await client.FlushAsync();
        var next = await client.ReadUntilAsync(f => f.Type is FrameType.Ping or FrameType.GoAway);
        Assert.Equal(FrameType.Ping, next?.Type);
    }

    [Fact]
    public async Task A_field_block_left_open_ends_the_connection_with_protocol_error()
    {
        var clock = new ManualClock();
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync(clock);
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        await client.SettledAsync();

        // HEADERS without END_HEADERS, and no CONTINUATION ever.
        client.RawFrame(FrameType.Headers, FrameFlags.EndStream, 1, [0x82]);
        await client.FlushAsync();

        await clock.ArmedAsync(Http2Limits.FieldBlockTimeout).WaitAsync(BoundedRead.Limit);
        clock.Advance(Http2Limits.FieldBlockTimeout);

        var goAway = await client.ReadUntilAsync(f => f.Type == FrameType.GoAway);
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.ProtocolError, goAway.ErrorCode);
    }

    [Fact]
    public async Task A_stream_stalled_on_a_zero_window_is_reset_and_the_connection_goes_on()
    {
        var clock = new ManualClock();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await StartProxyAsync(clock);

        // The client grants no stream window at all: the response's DATA can never be sent.
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port, new Http2Setting(SettingsParameter.InitialWindowSize, 0));
        await client.SettledAsync();
        client.Headers(1, "GET", "/", endStream: true);
        await client.FlushAsync();
        var head = await client.ReadUntilAsync(f => f.StreamId == 1);
        Assert.Equal(FrameType.Headers, head?.Type);

        await clock.ArmedAsync(Http2Limits.SendWindowStallTimeout).WaitAsync(BoundedRead.Limit);
        clock.Advance(Http2Limits.SendWindowStallTimeout);

        var reset = await client.ReadUntilAsync(f => f.StreamId == 1);
        Assert.Equal(FrameType.RstStream, reset?.Type);
        Assert.Equal(Http2ErrorCode.Cancel, reset!.ErrorCode);

        client.Ping(3);
        await client.FlushAsync();
        var next = await client.ReadUntilAsync(f => f.Type is FrameType.Ping or FrameType.GoAway);
        Assert.Equal(FrameType.Ping, next?.Type);
    }

    [Fact]
    public async Task A_stream_whose_request_body_trickles_below_the_minimum_rate_is_answered_408_and_reset_alone()
    {
        var clock = new ManualClock();
        var bodyStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            // The upload is never answered (it waits for its body); the other stream's GET is.
            if ((await RawOrigin.ReadHeadAsync(stream)).StartsWith("POST", StringComparison.Ordinal))
            {
                await stream.ReadExactlyBoundedAsync(new byte[10]);
                bodyStarted.TrySetResult();
                await RawOrigin.WaitForCloseAsync(stream);
                return;
            }

            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
        });
        await using var proxy = await StartProxyAsync(clock, o =>
        {
            o.Timeouts.MinRequestBodyDataRate = new MinDataRate(240, RateGrace);
            o.Timeouts.MinResponseDataRate = null;
        });
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        await client.SettledAsync();

        // Ten octets of a thousand, then nothing.
        client.Headers(1, "POST", "/upload", endStream: false, ("content-length", "1000"));
        client.Data(1, "0123456789"u8.ToArray(), endStream: false);
        await client.FlushAsync();

        // The ten octets were relayed: the proxy now waits on the client for more.
        await bodyStarted.Task.WaitAsync(BoundedRead.Limit);
        var frames = await AdvanceUntilAsync(clock, client.CollectUntilAsync(f => f.StreamId == 1 && f.Type == FrameType.RstStream));
        var head = frames.First(f => f.StreamId == 1 && f.Type == FrameType.Headers);
        Assert.Contains(new Interpose.Core.Http.HttpHeader(":status", "408"), H2RawClient.DecodeFields(head));
        Assert.Contains(frames, f => f.StreamId == 1 && f.Type == FrameType.Data && System.Text.Encoding.UTF8.GetString(f.Payload).Contains("minimum data rate", StringComparison.Ordinal));
        Assert.Equal(Http2ErrorCode.Cancel, frames[^1].ErrorCode);

        // The connection and its other streams are untouched.
        client.Headers(3, "GET", "/", endStream: true);
        await client.FlushAsync();
        var answer = await client.ReadUntilAsync(f => f.StreamId == 3 && f.Type == FrameType.Data);
        Assert.Equal("ok"u8.ToArray(), answer?.Payload);
    }

    [Fact]
    public async Task A_stream_whose_client_does_not_read_below_the_minimum_rate_is_reset_alone()
    {
        var clock = new ManualClock();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await StartProxyAsync(clock, o =>
        {
            o.Timeouts.MinRequestBodyDataRate = null;
            o.Timeouts.MinResponseDataRate = new MinDataRate(240, RateGrace);
        });

        // The client grants no stream window: it reads nothing of the response body.
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port, new Http2Setting(SettingsParameter.InitialWindowSize, 0));
        await client.SettledAsync();
        client.Headers(1, "GET", "/", endStream: true);
        await client.FlushAsync();

        // The head went out, the body waits for send credit the client never gives.
        var frames = new List<ReceivedFrame> { (await client.ReadUntilAsync(f => f.StreamId == 1))! };
        Assert.Equal(FrameType.Headers, frames[0].Type);

        // Reset by the rate (RateGrace), long before the zero-window stall timeout (Http2Limits.SendWindowStallTimeout).
        frames = await AdvanceUntilAsync(clock, client.CollectUntilAsync(f => f.StreamId == 1 && f.Type == FrameType.RstStream));
        Assert.Equal(Http2ErrorCode.Cancel, frames[^1].ErrorCode);

        client.Ping(3);
        await client.FlushAsync();
        var next = await client.ReadUntilAsync(f => f.Type is FrameType.Ping or FrameType.GoAway);
        Assert.Equal(FrameType.Ping, next?.Type);
    }

    /// <summary>The grace period of the rates under test: a duration no other timer of these tests uses.</summary>
    private static readonly TimeSpan RateGrace = TimeSpan.FromSeconds(7);

    /// <summary>
    /// Moves the clock to the rate's timer each time it is armed, until <paramref name="answer"/> completes. The
    /// caller first awaits a sign that the proxy is on its way to the wait on the client (it may not be there yet).
    /// Each look either finds the wait and the grace period spent (the reset), or arms the timer again: for the grace
    /// period when no wait is in progress, for what is left of it when one is. How much is left depends on when the
    /// proxy's flow read the clock, which another timer firing on the way (the proxy's periodic heap trim, every 5 s)
    /// moves, so each step advances by the due time of that arming, not by a fixed period.
    /// </summary>
    private static async Task<List<ReceivedFrame>> AdvanceUntilAsync(ManualClock clock, Task<List<ReceivedFrame>> answer)
    {
        for (var armed = 1; !answer.IsCompleted; armed++)
        {
            // The answer's reads are bounded (BoundedRead.Limit): a missing reset fails the test instead of looping on.
            var arming = clock.ArmedAsync(static state => state is DataRateMonitor, armed);
            await Task.WhenAny(answer, arming).WaitAsync(BoundedRead.Limit);
            if (!answer.IsCompleted)
            {
                clock.Advance(await arming);
                await Task.Yield();
            }
        }

        return await answer;
    }

    private Task<TestProxy> StartProxyAsync(ManualClock clock, Action<ProxyOptions>? configure = null) => TestProxy.StartAsync(output, o =>
    {
        o.Http2 = true;
        o.TimeProvider = clock;
        configure?.Invoke(o);

        // Defaults that equal a bound under test (30 s request head, 60 s response head and pool idle, 10 s connect).
        o.Timeouts.RequestHead = TimeSpan.FromSeconds(31);
        o.Timeouts.ResponseHead = TimeSpan.FromSeconds(61);
        o.Timeouts.UpstreamIdle = TimeSpan.FromSeconds(62);
        o.Timeouts.Connect = TimeSpan.FromSeconds(11);
        o.Timeouts.TlsHandshake = TimeSpan.FromSeconds(12);
        o.Timeouts.Shutdown = TimeSpan.FromSeconds(13);
    });
}
