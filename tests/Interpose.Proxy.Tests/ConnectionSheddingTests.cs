using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// At a connection cap, connections still without a complete first request head past the grace period are shed,
/// oldest first, to make room; connections that completed a head never are. Time is a <see cref="ManualClock"/>: the
/// grace period passes when the test says so.
/// </summary>
public sealed class ConnectionSheddingTests(ITestOutputHelper output)
{
    /// <summary>Safety bound on every wait, so a bug fails the test instead of hanging it (not a timing assertion).</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(50, 300)]
    [InlineData(ProxyOptions.DefaultMaxConnectionsPerClient, 300)]
    public async Task A_flood_of_partial_heads_from_one_address_does_not_lock_out_its_well_behaved_client(int perClientLimit, int flood)
    {
        var clock = new ManualClock();
        var logs = new LogCollector();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.TimeProvider = clock;
            o.MaxConnectionsPerClient = perClientLimit;
        }, logs: logs);
        var sheds = new ConcurrentQueue<string>();
        using var shedListener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.connections.shed", "reason", sheds);
        using var accounted = new AcceptCounter(proxy.Server.Metrics.Meter);
        var stalled = new List<Socket>();
        try
        {
            // Hundreds of connections from 127.0.0.1, each with half a request head, then silence: the first
            // perClientLimit fill the cap, the rest are refused (none is past the grace period yet).
            for (var i = 0; i < flood; i++)
            {
                stalled.Add(await OpenPartialAsync(proxy, origin));
            }

            await accounted.ReachedAsync(flood).WaitAsync(Bound);
            clock.Advance(ConnectionLimiter.ShedGrace);

            var waited = Stopwatch.StartNew();
            var answer = await GetAsync(proxy, origin, IPAddress.Loopback);
            waited.Stop();
            output.WriteLine($"legitimate request after a {flood}-connection flood (cap {perClientLimit}): answered in {waited.Elapsed.TotalMilliseconds:0.0} ms");

            Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
            Assert.True(await IsClosedAsync(stalled[0]), "the oldest stalled connection was shed");
            Assert.Equal(["client_limit"], sheds);
            Assert.Contains("127.0.0.1", (await logs.WaitForAsync(310)).Message, StringComparison.Ordinal);
        }
        finally
        {
            stalled.ForEach(s => s.Dispose());
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_stalled_connection_is_shed_only_past_the_grace_period(bool perClient)
    {
        var clock = new ManualClock();
        var logs = new LogCollector();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.TimeProvider = clock;
            if (perClient)
            {
                o.MaxConnectionsPerClient = 1;
            }
            else
            {
                o.MaxConnections = 1;
            }
        }, logs: logs);
        var sheds = new ConcurrentQueue<string>();
        using var shedListener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.connections.shed", "reason", sheds);
        using var accounted = new AcceptCounter(proxy.Server.Metrics.Meter);
        var newcomer = perClient ? IPAddress.Loopback : IPAddress.Parse("127.0.0.2");
        using var stalled = await OpenPartialAsync(proxy, origin);
        await accounted.ReachedAsync(1).WaitAsync(Bound);

        var withinGrace = await GetAsync(proxy, origin, newcomer);
        clock.Advance(ConnectionLimiter.ShedGrace);
        var pastGrace = await GetAsync(proxy, origin, newcomer);

        Assert.StartsWith("HTTP/1.1 503 ", withinGrace, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 ", pastGrace, StringComparison.Ordinal);
        Assert.True(await IsClosedAsync(stalled));
        Assert.Equal([perClient ? "client_limit" : "total_limit"], sheds);
        var logged = (await logs.WaitForAsync(310)).Message;
        Assert.Contains("127.0.0.1", logged, StringComparison.Ordinal);
        Assert.Contains(perClient ? "per client connection limit 1" : "total connection limit 1", logged, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connections_that_completed_a_request_head_are_never_shed()
    {
        var clock = new ManualClock();
        await using var origin = RawOrigin.Recording();
        var requestArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var slowOrigin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            requestArrived.TrySetResult();
            await answer.Task;
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"u8.ToArray());
        });
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.TimeProvider = clock;
            o.MaxConnectionsPerClient = 2;
        });
        var sheds = new ConcurrentQueue<string>();
        using var shedListener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.connections.shed", "reason", sheds);

        // One connection idle between exchanges, one mid-exchange (its origin has not answered): both old enough to
        // be shed if they still counted as waiting for a first head.
        await using var idle = await RawClient.ConnectAsync(proxy);
        Assert.StartsWith("HTTP/1.1 200 ", await ExchangeAsync(idle, origin.Port, "ok".Length), StringComparison.Ordinal);
        await using var busy = await RawClient.ConnectAsync(proxy);
        await busy.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{slowOrigin.Port}/ HTTP/1.1\r\nHost: localhost:{slowOrigin.Port}\r\n\r\n"));
        await requestArrived.Task.WaitAsync(Bound);
        clock.Advance(TimeSpan.FromSeconds(10)); // past the grace period, short of the 30 s idle sweep and the 60 s response-head timeout

        var newcomer = await GetAsync(proxy, origin, IPAddress.Loopback);
        answer.TrySetResult();

        Assert.StartsWith("HTTP/1.1 503 ", newcomer, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 ", await ReadHeadAsync(busy), StringComparison.Ordinal);
        Assert.Equal("slow", await ReadAsciiAsync(busy, 4));
        Assert.StartsWith("HTTP/1.1 200 ", await ExchangeAsync(idle, origin.Port, "ok".Length), StringComparison.Ordinal);
        Assert.Empty(sheds);
    }

    /// <summary>A connection from 127.0.0.1 that sent half a request head (no blank line) and nothing more.</summary>
    private static async Task<Socket> OpenPartialAsync(TestProxy proxy, RawOrigin origin)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, proxy.Port);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: local"));
        return socket;
    }

    /// <summary>One GET with Connection: close from <paramref name="from"/>: what came back ("" when closed unanswered).</summary>
    private static async Task<string> GetAsync(TestProxy proxy, RawOrigin origin, IPAddress from)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(IPAddress.Loopback, proxy.Port);
        await using var stream = new NetworkStream(socket);
        using var bound = new CancellationTokenSource(Bound);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"), bound.Token);
        using var received = new MemoryStream();
        await stream.CopyToAsync(received, bound.Token);
        return Encoding.ASCII.GetString(received.ToArray());
    }

    /// <summary>A keep-alive GET on an open connection; the head of the answer, whose body (of known length) is read too.</summary>
    private static async Task<string> ExchangeAsync(Stream client, int originPort, int bodyLength)
    {
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{originPort}/ HTTP/1.1\r\nHost: localhost:{originPort}\r\n\r\n"));
        var head = await ReadHeadAsync(client);
        await ReadAsciiAsync(client, bodyLength);
        return head;
    }

    private static Task<string> ReadHeadAsync(Stream stream) => RawOrigin.ReadHeadAsync(stream).WaitAsync(Bound);

    private static Task<string> ReadAsciiAsync(Stream stream, int count) => RawClient.ReadAsciiAsync(stream, count).WaitAsync(Bound);

    /// <summary>True when the proxy closed the connection (an orderly close or a reset), within <see cref="Bound"/>.</summary>
    private static async Task<bool> IsClosedAsync(Socket socket)
    {
        using var bound = new CancellationTokenSource(Bound);
        var buffer = new byte[1024];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, bound.Token) > 0)
            {
                // A shed connection gets no answer; anything read is checked by the caller's other assertions.
            }

            return true;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    /// <summary>Counts connections the proxy has decided on at accept (admitted or refused), to await a number of them.</summary>
    private sealed class AcceptCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Lock _lock = new();
        private readonly List<(long Count, TaskCompletionSource Reached)> _waiters = [];
        private long _count;

        public AcceptCounter(Meter meter)
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, meter) && instrument.Name is "interpose.connections" or "interpose.connections.refused")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, _, _) =>
            {
                lock (_lock)
                {
                    _count += value;
                    _waiters.RemoveAll(w => w.Count <= _count && w.Reached.TrySetResult());
                }
            });
            _listener.Start();
        }

        public Task ReachedAsync(long count)
        {
            lock (_lock)
            {
                if (_count >= count)
                {
                    return Task.CompletedTask;
                }

                var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((count, reached));
                return reached.Task;
            }
        }

        public void Dispose() => _listener.Dispose();
    }
}
