using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>Slowloris, idle connections and slow readers: the proxy bounds the time and memory a client can hold.</summary>
public sealed class ResourceExhaustionTests(ITestOutputHelper output)
{
    /// <summary>The attacker's pace: one byte every 50 ms, so the 200 ms request-head budget covers a few of them.</summary>
    private static readonly TimeSpan DribblePace = TimeSpan.FromMilliseconds(50);

    /// <summary>Safety bound on a wait, so a bug fails the test instead of hanging it (not a timing assertion).</summary>
    private static readonly TimeSpan SafetyBound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Dribbling_a_request_head_gets_408_and_a_close()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Timeouts.RequestHead = TimeSpan.FromMilliseconds(200));
        await using var client = await RawClient.ConnectAsync(proxy);
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n"));

        // Every byte arrives well within any per-read timeout; only a whole-head deadline stops this (RFC 9112 §9.5 lets
        // a server close a connection it considers idle; 408 tells the client why, as Kestrel and nginx do).
        using var stopDribbling = new CancellationTokenSource();
        var dribble = DribbleAsync(client, stopDribbling.Token);
        // A byte dribbled after the proxy's last read makes its close a reset; the answer before it still counts.
        var answer = (await RawClient.ReadUntilClosedAsync(client)).Text;
        await stopDribbling.CancelAsync();
        await dribble;

        Assert.StartsWith("HTTP/1.1 408 Request Timeout\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nConnection: close\r\n", answer, StringComparison.Ordinal);
        Assert.Equal(0, origin.AcceptedConnections);
    }

    [Fact]
    public async Task Idle_keep_alive_connection_is_closed_without_an_answer()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Timeouts.IdleKeepAlive = TimeSpan.FromMilliseconds(200));
        await using var client = await RawClient.ConnectAsync(proxy);
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));

        var answer = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        // One complete response, then the proxy closed the idle connection: nothing after the body (no 408 for a
        // connection that never started another request, RFC 9112 §9.5).
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nok", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connection_that_never_sends_anything_is_closed_after_the_request_head_timeout_from_accept()
    {
        // Default timeouts (30 s head, 130 s keep-alive) on a clock that moves when told; the origin-pool sweep is
        // moved out of the way so the only 30 s timer is the connection's.
        var clock = new ManualClock();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.TimeProvider = clock;
            o.Timeouts.UpstreamIdle = TimeSpan.FromHours(1);
        });
        await using var client = await RawClient.ConnectAsync(proxy);

        // A connection that has not sent its first request is not idle between requests: the head timeout applies
        // from accept (nginx's client_header_timeout), not the keep-alive timeout.
        await clock.ArmedAsync(ProxyTimeouts.DefaultRequestHead).WaitAsync(SafetyBound);
        clock.Advance(ProxyTimeouts.DefaultRequestHead);

        Assert.Empty(await RawClient.ReadToEndAsync(client).WaitAsync(SafetyBound));
    }

    [Fact]
    public async Task Between_requests_the_keep_alive_timeout_applies_not_the_head_timeout()
    {
        var clock = new ManualClock();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.TimeProvider = clock;
            o.Timeouts.UpstreamIdle = TimeSpan.FromHours(1);
        });
        await using var client = await RawClient.ConnectAsync(proxy);
        var request = Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n");
        await client.WriteAsync(request);
        Assert.StartsWith("HTTP/1.1 200 ", await RawOrigin.ReadHeadAsync(client).WaitAsync(SafetyBound), StringComparison.Ordinal);
        Assert.Equal("ok", await RawClient.ReadAsciiAsync(client, 2).WaitAsync(SafetyBound));

        // Idle for longer than the head timeout, shorter than the keep-alive one: still open for the next request.
        await clock.ArmedAsync(ProxyTimeouts.DefaultIdleKeepAlive).WaitAsync(SafetyBound);
        clock.Advance(ProxyTimeouts.DefaultRequestHead + TimeSpan.FromSeconds(1));
        await client.WriteAsync(request);

        Assert.StartsWith("HTTP/1.1 200 ", await RawOrigin.ReadHeadAsync(client).WaitAsync(SafetyBound), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Slow_reader_back_pressures_the_origin_instead_of_being_buffered()
    {
        const long ResponseBytes = 256L * 1024 * 1024;
        const long MaxAhead = 32L * 1024 * 1024; // kernel socket buffers on both proxy sockets plus the proxy's pipes
        var blockedAt = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var stall = TimeSpan.FromSeconds(1);
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {ResponseBytes}\r\n\r\n"));
            var piece = new byte[64 * 1024];
            long written = 0;
            while (written < ResponseBytes)
            {
                var write = stream.WriteAsync(piece).AsTask();
                if (!blockedAt.Task.IsCompleted && await Task.WhenAny(write, Task.Delay(stall)) != write)
                {
                    // A write that cannot complete for a second while the client reads nothing: the proxy stopped
                    // reading from the origin. Record how far ahead the origin got.
                    blockedAt.TrySetResult(written);
                }

                await write;
                written += piece.Length;
            }

            blockedAt.TrySetResult(-1);
        });
        await using var proxy = await TestProxy.StartAsync(output);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 64 * 1024 };
        await socket.ConnectAsync(IPAddress.Loopback, proxy.Port);
        await using var client = new NetworkStream(socket, ownsSocket: false);
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"));

        var ahead = await blockedAt.Task;
        var received = await client.DrainBoundedAsync(256 * 1024);

        output.WriteLine($"origin got {ahead / (1024 * 1024.0):0.0} MiB ahead of a client reading nothing");
        Assert.InRange(ahead, 0, MaxAhead);
        Assert.True(received > ResponseBytes, $"received {received}"); // head plus the whole body, once the client reads
    }

    private static async Task DribbleAsync(Stream client, CancellationToken cancellationToken)
    {
        try
        {
            for (var i = 0; i < 200 && !cancellationToken.IsCancellationRequested; i++)
            {
                await client.WriteAsync("X"u8.ToArray(), cancellationToken);
                await Task.Delay(DribblePace, cancellationToken);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The proxy closed the connection, or the test has its answer.
        }
    }
}
