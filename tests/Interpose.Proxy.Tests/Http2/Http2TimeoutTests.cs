using Interpose.Core.Http2;
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

    private Task<TestProxy> StartProxyAsync(ManualClock clock) => TestProxy.StartAsync(output, o =>
    {
        o.Http2 = true;
        o.TimeProvider = clock;

        // Defaults that equal a bound under test (30 s request head, 60 s response head and pool idle, 10 s connect).
        o.Timeouts.RequestHead = TimeSpan.FromSeconds(31);
        o.Timeouts.ResponseHead = TimeSpan.FromSeconds(61);
        o.Timeouts.UpstreamIdle = TimeSpan.FromSeconds(62);
        o.Timeouts.Connect = TimeSpan.FromSeconds(11);
        o.Timeouts.TlsHandshake = TimeSpan.FromSeconds(12);
        o.Timeouts.Shutdown = TimeSpan.FromSeconds(13);
    });
}
