using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// Minimum data rates over real sockets: a client trickling its request body or not reading its response is cut off
/// (408 or a close), its origin connection closed, the event logged and counted; fast transfers and slow origins are
/// left alone. Real time, with a short grace period and a rate the stalled client can never meet: the stalled client
/// sends or reads nothing, so the proxy's answer is certain and the test awaits it (with a generous bound).
/// </summary>
public sealed class MinDataRateTests(ITestOutputHelper output)
{
    /// <summary>Bounds every wait for the proxy's answer, so a missing one fails the test instead of hanging it.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>A rate no stalled client meets: 1 MB/s after 0.2 s of waiting on it.</summary>
    private static readonly MinDataRate Strict = new(1_000_000, TimeSpan.FromMilliseconds(200));

    [Fact]
    public async Task A_trickled_request_body_gets_408_and_its_origin_connection_is_closed()
    {
        var originClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await RawOrigin.WaitForCloseAsync(stream);
            originClosed.TrySetResult();
        });
        var logs = new RecordingOutput(output);
        await using var proxy = await TestProxy.StartAsync(logs, o => o.Timeouts.MinRequestBodyDataRate = Strict);
        using var violations = new ViolationCounter(proxy);
        await using var client = await RawClient.ConnectAsync(proxy);

        // Ten bytes of a thousand, then nothing.
        await client.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST http://localhost:{origin.Port}/upload HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nContent-Length: 1000\r\n\r\n0123456789"));

        var answer = await ReadUntilClosedAsync(client).WaitAsync(Bound);
        Assert.StartsWith("HTTP/1.1 408 ", answer, StringComparison.Ordinal);
        Assert.Contains("minimum data rate", answer, StringComparison.Ordinal);
        await originClosed.Task.WaitAsync(Bound);
        Assert.Equal("client_request", await violations.First.WaitAsync(Bound));
        var logged = await logs.Line("moved the body below the minimum data rate").WaitAsync(Bound);
        Assert.Contains($"localhost:{origin.Port}", logged, StringComparison.Ordinal);
        Assert.Contains("ClientRequest", logged, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connections_that_ended_leave_no_rate_monitor_registered_on_the_proxy()
    {
        // A monitor keeps a registration on the proxy's lifetime token between bodies; a connection that did not
        // dispose its monitors left them (timer, token source, lock) for the proxy's lifetime: about 0.5 MiB a minute
        // in a soak with 20 new connections a second.
        await using var origin = await Origins.StartPlainAsync();
        var proxy = await TestProxy.StartAsync(output);
        var runtime = proxy.Server.Runtime!;
        for (var i = 0; i < 3; i++)
        {
            using var client = proxy.CreateClient(pooled: false);
            using var upload = new ByteArrayContent(new byte[100]);
            using var response = await client.PostAsync(origin.Url("/echo"), upload);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // A connection still open holds its monitors: the exchanges did run under a request and a response rate.
        using (var kept = proxy.CreateClient())
        {
            using var upload = new ByteArrayContent(new byte[100]);
            using var response = await kept.PostAsync(origin.Url("/echo"), upload);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True(Interlocked.Read(ref runtime.OpenDataRateMonitors.Value) > 0);
        }

        await proxy.DisposeAsync();
        Assert.Equal(0, Interlocked.Read(ref runtime.OpenDataRateMonitors.Value));
    }

    [Fact]
    public async Task The_command_takes_the_rate_from_its_flag()
    {
        var originClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await RawOrigin.WaitForCloseAsync(stream);
            originClosed.TrySetResult();
        });
        var home = Directory.CreateTempSubdirectory("interpose-rate-").FullName;
        try
        {
            await using var proxy = await InterposeProcess.StartAsync(home, "--min-data-rate", "1000000:0.2");
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(IPAddress.Loopback, proxy.Port);
            await using var client = new NetworkStream(socket, ownsSocket: false);

            // Half of the body, then nothing: 50 KB earn over 200 s of waiting at the default 240 B/s (past the
            // bound), 0.2 s at the flag's rate.
            await client.WriteAsync(Encoding.ASCII.GetBytes(
                $"POST http://127.0.0.1:{origin.Port}/upload HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\nContent-Length: 100000\r\n\r\n"));
            await client.WriteAsync(new byte[50_000]);

            Assert.StartsWith("HTTP/1.1 408 ", await ReadUntilClosedAsync(client).WaitAsync(Bound), StringComparison.Ordinal);
            await originClosed.Task.WaitAsync(Bound);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    [Fact]
    public async Task A_body_buffered_for_a_hook_is_measured_too()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Timeouts.MinRequestBodyDataRate = Strict;
            o.Addons.Add(new BufferRequestBodies());
        });
        using var violations = new ViolationCounter(proxy);
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST http://localhost:{origin.Port}/upload HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nContent-Length: 1000\r\n\r\n0123456789"));

        var answer = await ReadUntilClosedAsync(client).WaitAsync(Bound);
        Assert.StartsWith("HTTP/1.1 408 ", answer, StringComparison.Ordinal);
        Assert.Equal("client_request", await violations.First.WaitAsync(Bound));
        Assert.Equal(0, origin.AcceptedConnections);
    }

    [Fact]
    public async Task A_request_body_trickled_after_the_response_started_ends_in_a_close()
    {
        var originClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            // Answers at once and streams, without reading the body (as a full-duplex origin may).
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"u8.ToArray());
            await RawOrigin.WaitForCloseAsync(stream);
            originClosed.TrySetResult();
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.Timeouts.MinRequestBodyDataRate = Strict);
        using var violations = new ViolationCounter(proxy);
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST http://localhost:{origin.Port}/upload HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nContent-Length: 1000\r\n\r\n0123456789"));

        var answer = await ReadUntilClosedAsync(client).WaitAsync(Bound);
        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("0\r\n\r\n", answer, StringComparison.Ordinal); // cut off: the body never ended
        Assert.Equal("client_request", await violations.First.WaitAsync(Bound));
        await originClosed.Task.WaitAsync(Bound);
    }

    [Fact]
    public async Task A_client_that_does_not_read_the_response_is_closed_and_so_is_its_origin_connection()
    {
        const long ResponseBytes = 1L << 30;
        var originClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {ResponseBytes}\r\n\r\n"));
            var piece = new byte[64 * 1024];
            try
            {
                for (long written = 0; written < ResponseBytes; written += piece.Length)
                {
                    await stream.WriteAsync(piece);
                }
            }
            finally
            {
                originClosed.TrySetResult();
            }
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.Timeouts.MinResponseDataRate = Strict);
        using var violations = new ViolationCounter(proxy);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await socket.ConnectAsync(IPAddress.Loopback, proxy.Port);
        await using var client = new NetworkStream(socket, ownsSocket: false);
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/big HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));

        // Reads nothing until the proxy gave up on it; then what the kernel still held, up to the close.
        Assert.Equal("client_response", await violations.First.WaitAsync(Bound));
        var received = await CountUntilClosedAsync(client).WaitAsync(Bound);

        output.WriteLine($"received {received} bytes before the close");
        Assert.InRange(received, 1, ResponseBytes - 1);
        await originClosed.Task.WaitAsync(Bound);
    }

    [Fact]
    public async Task Fast_transfers_both_ways_are_unaffected()
    {
        const int BodyBytes = 8 * 1024 * 1024;
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await RawOrigin.ReadExactlyAsync(stream, BodyBytes);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {BodyBytes}\r\n\r\n"));
            await stream.WriteAsync(new byte[BodyBytes]);
            await RawOrigin.WaitForCloseAsync(stream);
        });

        // 64 KB/s after 0.5 s: far below what loopback does, far above the stalled clients above.
        var rate = new MinDataRate(64 * 1024, TimeSpan.FromMilliseconds(500));
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Timeouts.MinRequestBodyDataRate = rate;
            o.Timeouts.MinResponseDataRate = rate;
        });
        using var violations = new ViolationCounter(proxy);
        using var client = proxy.CreateClient();

        using var response = await client.PostAsync(new Uri($"http://localhost:{origin.Port}/echo"), new ByteArrayContent(new byte[BodyBytes])).WaitAsync(Bound);
        var body = await response.Content.ReadAsByteArrayAsync().WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(BodyBytes, body.Length);
        Assert.Equal(0, violations.Count);
    }

    [Fact]
    public async Task An_origin_slow_to_send_the_response_is_not_held_against_the_client()
    {
        var originPause = TimeSpan.FromSeconds(1); // five times the grace period: the origin's wait, not the client's
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst"u8.ToArray());
            await Task.Delay(originPause);
            await stream.WriteAsync("-last"u8.ToArray());
            await RawOrigin.WaitForCloseAsync(stream);
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.Timeouts.MinResponseDataRate = Strict);
        using var violations = new ViolationCounter(proxy);
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/slow HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"));

        var answer = await ReadUntilClosedAsync(client).WaitAsync(Bound);
        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nfirst-last", answer, StringComparison.Ordinal);
        Assert.Equal(0, violations.Count);
    }

    [Fact]
    public async Task An_origin_slow_to_read_the_request_body_is_not_held_against_the_client()
    {
        const int BodyBytes = 8 * 1024 * 1024;
        var originPause = TimeSpan.FromSeconds(3); // six times the grace period, and longer than the bytes buffered earn
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await Task.Delay(originPause);
            await RawOrigin.ReadExactlyAsync(stream, BodyBytes);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
            await RawOrigin.WaitForCloseAsync(stream);
        });

        // 8 MB/s after 0.5 s: a stalled client is cut off within a second; the origin's 3 s pause would be too, if
        // it were counted against the client.
        await using var proxy = await TestProxy.StartAsync(output, o => o.Timeouts.MinRequestBodyDataRate = new MinDataRate(8_000_000, TimeSpan.FromMilliseconds(500)));
        using var violations = new ViolationCounter(proxy);
        using var client = proxy.CreateClient();

        using var response = await client.PostAsync(new Uri($"http://localhost:{origin.Port}/upload"), new ByteArrayContent(new byte[BodyBytes])).WaitAsync(Bound);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, violations.Count);
    }

    /// <summary>Reads until the proxy closes; a reset after the answer ends the read (the answer still counts).</summary>
    private static async Task<string> ReadUntilClosedAsync(Stream stream)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
            // Reset after the bytes that came.
        }

        return Encoding.Latin1.GetString(received.ToArray());
    }

    private static async Task<long> CountUntilClosedAsync(Stream stream)
    {
        var buffer = new byte[64 * 1024];
        long total = 0;
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                total += n;
            }
        }
        catch (IOException)
        {
            // Reset after the bytes that came.
        }

        return total;
    }

    private sealed class BufferRequestBodies : ProxyAddon
    {
        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            exchange.Request.BufferBody = true;
            return default;
        }
    }

    /// <summary>Listens to one proxy's <c>interpose.data_rate.violations</c>: how many, and the first one's phase.</summary>
    private sealed class ViolationCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly TaskCompletionSource<string> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _count;

        public ViolationCounter(TestProxy proxy)
        {
            var meter = proxy.Server.Metrics!.Meter;
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "interpose.data_rate.violations")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                Interlocked.Add(ref _count, (int)value);
                foreach (var tag in tags)
                {
                    if (tag.Key == "phase")
                    {
                        _first.TrySetResult((string)tag.Value!);
                    }
                }
            });
            _listener.Start();
        }

        public Task<string> First => _first.Task;

        public int Count => Volatile.Read(ref _count);

        public void Dispose() => _listener.Dispose();
    }

    /// <summary>The test output, also recording the proxy's log lines so that a test can await one.</summary>
    private sealed class RecordingOutput(ITestOutputHelper inner) : ITestOutputHelper
    {
        private readonly List<(string Text, TaskCompletionSource<string> Seen)> _waits = [];
        private readonly List<string> _lines = [];

        public void WriteLine(string message)
        {
            lock (_lines)
            {
                _lines.Add(message);
                foreach (var (text, seen) in _waits)
                {
                    if (message.Contains(text, StringComparison.Ordinal))
                    {
                        seen.TrySetResult(message);
                    }
                }
            }

            inner.WriteLine(message);
        }

        public void WriteLine(string format, params object[] args) => WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));

        /// <summary>The first log line (already written or to come) that contains <paramref name="text"/>.</summary>
        public Task<string> Line(string text)
        {
            var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lines)
            {
                if (_lines.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) is { } line)
                {
                    seen.TrySetResult(line);
                }
                else
                {
                    _waits.Add((text, seen));
                }
            }

            return seen.Task;
        }
    }
}
