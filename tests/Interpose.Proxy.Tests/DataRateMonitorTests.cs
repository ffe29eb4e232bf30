using System.Buffers;
using System.IO.Pipelines;
using Interpose.Core.Http;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The minimum data rate's accounting, on a clock the test moves: only waits on the measured peer count, bytes earn
/// time, a peer that moves nothing at all is caught, and the origin's slowness is never held against the client.
/// </summary>
public sealed class DataRateMonitorTests
{
    private static readonly MinDataRate HundredPerSecond = new(100, TimeSpan.FromSeconds(5));

    [Fact]
    public void A_wait_past_the_grace_period_without_bytes_violates_the_rate()
    {
        var clock = new ManualClock();
        using var monitor = new DataRateMonitor(clock);
        monitor.Start(HundredPerSecond, CancellationToken.None);
        monitor.WaitStarted();

        clock.Advance(TimeSpan.FromSeconds(4.9));
        Assert.False(monitor.Violated);

        clock.Advance(TimeSpan.FromSeconds(0.2));
        Assert.True(monitor.Violated);
        Assert.True(monitor.Token.IsCancellationRequested);
    }

    [Fact]
    public void Time_without_a_wait_on_the_peer_does_not_count()
    {
        var clock = new ManualClock();
        using var monitor = new DataRateMonitor(clock);
        monitor.Start(HundredPerSecond, CancellationToken.None);

        // The proxy waits on the other side (or does its own work) for a minute: not this peer's fault.
        clock.Advance(TimeSpan.FromSeconds(60));
        Assert.False(monitor.Violated);

        monitor.WaitStarted();
        clock.Advance(TimeSpan.FromSeconds(4.9));
        Assert.False(monitor.Violated);
        clock.Advance(TimeSpan.FromSeconds(1.2)); // a heartbeat at most after the grace period's worth of waiting
        Assert.True(monitor.Violated);
    }

    [Fact]
    public void Bytes_earn_waiting_time_at_the_minimum_rate()
    {
        var clock = new ManualClock();
        using var monitor = new DataRateMonitor(clock);
        monitor.Start(HundredPerSecond, CancellationToken.None);
        monitor.Transferred(1000); // 10 s worth at 100 B/s
        monitor.WaitStarted();

        clock.Advance(TimeSpan.FromSeconds(9.9));
        Assert.False(monitor.Violated);

        clock.Advance(TimeSpan.FromSeconds(0.2));
        Assert.True(monitor.Violated);
        Assert.Equal(1000, monitor.Bytes);
    }

    [Fact]
    public void Waits_add_up_across_reads()
    {
        var clock = new ManualClock();
        using var monitor = new DataRateMonitor(clock);
        monitor.Start(HundredPerSecond, CancellationToken.None);
        for (var i = 0; i < 4; i++)
        {
            monitor.WaitStarted();
            clock.Advance(TimeSpan.FromSeconds(1));
            monitor.WaitEnded();
            monitor.Transferred(1);
            clock.Advance(TimeSpan.FromSeconds(10)); // the proxy busy elsewhere: not counted
        }

        Assert.False(monitor.Violated);
        Assert.Equal(TimeSpan.FromSeconds(4), monitor.Waited);

        monitor.WaitStarted();
        clock.Advance(TimeSpan.FromSeconds(1.1));
        Assert.True(monitor.Violated);
    }

    [Fact]
    public void From_the_first_byte_the_wait_before_it_does_not_count()
    {
        var clock = new ManualClock();
        using var monitor = new DataRateMonitor(clock);
        monitor.Start(HundredPerSecond, CancellationToken.None, fromFirstByte: true);
        monitor.WaitStarted();

        // Expect: 100-continue: the client waits for the origin's 100 before it sends its body.
        clock.Advance(TimeSpan.FromSeconds(60));
        Assert.False(monitor.Violated);
        monitor.WaitEnded();

        monitor.Transferred(1);
        monitor.WaitStarted();
        clock.Advance(TimeSpan.FromSeconds(6.2));
        Assert.True(monitor.Violated);
    }

    [Fact]
    public void The_parent_cancels_without_a_violation()
    {
        var clock = new ManualClock();
        using var parent = new CancellationTokenSource();
        using var monitor = new DataRateMonitor(clock);
        monitor.Start(HundredPerSecond, parent.Token);
        parent.Cancel();

        Assert.True(monitor.Token.IsCancellationRequested);
        Assert.False(monitor.Violated);
    }

    [Fact]
    public void A_stopped_monitor_cancels_nothing_and_the_next_body_starts_afresh()
    {
        var clock = new ManualClock();
        using var monitor = new DataRateMonitor(clock);
        monitor.Start(HundredPerSecond, CancellationToken.None);
        monitor.WaitStarted();
        clock.Advance(TimeSpan.FromSeconds(4));
        monitor.Stop();
        clock.Advance(TimeSpan.FromSeconds(60));
        Assert.False(monitor.Violated);

        monitor.Start(HundredPerSecond, CancellationToken.None);
        Assert.Equal(TimeSpan.Zero, monitor.Waited);
        Assert.False(monitor.Token.IsCancellationRequested);
    }

    [Fact]
    public async Task Request_body_relay_counts_the_wait_on_the_client_not_the_origins_back_pressure()
    {
        var clock = new ManualClock();
        using var monitor = new DataRateMonitor(clock);
        monitor.Start(HundredPerSecond, CancellationToken.None);
        var client = InlinePipe();
        var origin = new BlockingSink();
        await client.Writer.WriteAsync(new byte[10]);

        // The 10 bytes are read at once and handed to the origin, which does not take them.
        var relay = BodyReader.RelayAsync(client.Reader, new BodyFraming(BodyKind.ContentLength, 100), new ChunkedDecoder(Http1Limits.Default), origin,
            new BodyRelayOptions(Raw: true, ReadRate: monitor), monitor.Token).AsTask();
        clock.Advance(TimeSpan.FromSeconds(60));
        Assert.False(monitor.Violated);

        // The origin takes them; the relay waits on the client, which sends nothing more.
        origin.ReleaseWrite();
        clock.Advance(TimeSpan.FromSeconds(5.1));

        Assert.True(monitor.Violated);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => relay.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(10, monitor.Bytes);
    }

    [Fact]
    public async Task Response_relay_counts_the_wait_on_the_client_not_on_a_slow_origin()
    {
        var clock = new ManualClock();
        using var monitor = new DataRateMonitor(clock);
        monitor.Start(HundredPerSecond, CancellationToken.None);
        var origin = InlinePipe();
        var client = new BlockingSink();

        // The origin sends nothing for a minute: the relay waits on it, not on the client.
        var relay = BodyReader.RelayAsync(origin.Reader, new BodyFraming(BodyKind.ContentLength, 100), new ChunkedDecoder(Http1Limits.Default), client,
            new BodyRelayOptions(Raw: true, WriteRate: monitor), monitor.Token).AsTask();
        clock.Advance(TimeSpan.FromSeconds(60));
        Assert.False(monitor.Violated);

        // Now it sends, and the write to the client does not complete.
        await origin.Writer.WriteAsync(new byte[10]);
        clock.Advance(TimeSpan.FromSeconds(5.1));

        Assert.True(monitor.Violated);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => relay.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    /// <summary>A pipe whose continuations run inline, so that the relay has reached its next wait when a write returns.</summary>
    private static Pipe InlinePipe() =>
        new(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false));

    /// <summary>A sink whose writes complete only when the test releases them (inline, as a socket's completion would run).</summary>
    private sealed class BlockingSink : IBodySink
    {
        private TaskCompletionSource? _pending;

        public ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
        {
            var pending = new TaskCompletionSource();
            cancellationToken.Register(() => pending.TrySetCanceled(cancellationToken));
            _pending = pending;
            return new ValueTask(pending.Task);
        }

        public ValueTask CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken) => default;

        public void ReleaseWrite() => _pending!.SetResult();
    }
}
