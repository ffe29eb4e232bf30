using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using Interpose.Core.Http2;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// Exchanges of one HTTP/2 connection are independent: a client's RST_STREAM cancels that stream's exchange at once
/// (origin included), and each exchange fails in its own phase. The proxy's clock is a <see cref="ManualClock"/> that
/// never moves, so no proxy timeout can end a wait in place of what the test checks.
/// </summary>
public sealed class Http2ExchangeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_reset_stream_closes_its_origin_connection_at_once_and_other_streams_go_on()
    {
        var slowHeadSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slowClosed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            var head = await RawOrigin.ReadHeadAsync(stream);
            if (head.StartsWith("GET /slow ", StringComparison.Ordinal))
            {
                // Never answers: only the proxy closing this connection ends the read.
                slowHeadSeen.TrySetResult();
                try
                {
                    slowClosed.TrySetResult(await stream.ReadBoundedAsync(new byte[1]) == 0);
                }
                catch (IOException)
                {
                    slowClosed.TrySetResult(true);
                }
                catch (TimeoutException)
                {
                    slowClosed.TrySetResult(false);
                }

                return;
            }

            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
            await RawOrigin.WaitForCloseAsync(stream);
        });
        using var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.TimeProvider = new ManualClock();
        }, logs: logs);
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        client.Headers(1, "GET", "/slow", endStream: true);
        await client.FlushAsync();
        await slowHeadSeen.Task.WaitAsync(BoundedRead.Limit);

        client.Rst(1);
        await client.FlushAsync();

        // The origin connection of that exchange closed although no proxy timeout could have run (the clock stands
        // still), and the exchange is reported as cancelled while it waited for the origin's response head.
        Assert.True(await slowClosed.Task.WaitAsync(BoundedRead.Limit + BoundedRead.Limit), "the origin connection of the reset stream stayed open");
        var cancelled = await logs.WaitForAsync(153);
        Assert.Contains("phase Response", cancelled.Message, StringComparison.Ordinal);

        // The connection and its other streams are unaffected.
        client.Headers(3, "GET", "/fast", endStream: true);
        await client.FlushAsync();
        var (_, body) = await ReadResponseAsync(client, 3);
        Assert.Equal("ok", body);
    }

    [Fact]
    public async Task Concurrent_streams_fail_each_in_its_own_phase()
    {
        var holdSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            // Reads the request, waits, then closes without a response: a failure in the response phase.
            await RawOrigin.ReadHeadAsync(stream);
            holdSeen.TrySetResult();
            await release.Task.WaitAsync(BoundedRead.Limit);
        });
        var closedPort = ClosedPort();
        using var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.TimeProvider = new ManualClock();
            o.Addons.Add(new Hooks
            {
                OnRequestHeaders = e =>
                {
                    if (e.Request.Path == "/refused")
                    {
                        e.Request.Port = closedPort;
                    }
                },
            });
        }, logs: logs);
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        try
        {
            // Stream 1 waits in the response phase while stream 3 fails to connect.
            client.Headers(1, "GET", "/held", endStream: true);
            await client.FlushAsync();
            await holdSeen.Task.WaitAsync(BoundedRead.Limit);

            client.Headers(3, "GET", "/refused", endStream: true);
            await client.FlushAsync();
            var (_, refused) = await ReadResponseAsync(client, 3);
            Assert.Contains("(phase: connect)", refused, StringComparison.Ordinal);

            // Stream 1 fails after stream 3 did: its own phase is reported, not the last one another stream set.
            release.SetResult();
            var (_, held) = await ReadResponseAsync(client, 1);
            Assert.Contains("(phase: response)", held, StringComparison.Ordinal);

            var failures = logs.Entries.Where(e => e.EventId.Id == 120).Select(e => e.Message).ToList();
            Assert.Contains(failures, m => m.Contains($":{closedPort} failed in phase Connect", StringComparison.Ordinal));
            Assert.Contains(failures, m => m.Contains($":{origin.Port} failed in phase Response", StringComparison.Ordinal));
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task The_flow_log_and_the_exchange_counter_name_each_sides_protocol()
    {
        await using var origin = await Origins.StartTlsAsync();
        using var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true, logs: logs);
        var protocols = new ConcurrentQueue<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, proxy.Server.Metrics!.Meter) && instrument.Name == "interpose.exchanges")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "protocol")
                {
                    protocols.Enqueue((string)tag.Value!);
                }
            }
        });
        listener.Start();

        using var client = proxy.CreateClient();
        foreach (var version in new[] { HttpVersion.Version20, HttpVersion.Version11 })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, origin.Url("/hello")) { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await client.SendAsync(request);
            Assert.Equal(version, response.Version);
            Assert.Equal("hello from origin", await response.Content.ReadAsStringAsync());
        }

        await proxy.Server.StopAsync();
        var flowLines = logs.Entries.Where(e => e.Category == "Interpose.Flow").Select(e => e.Message).ToList();
        Assert.Contains(flowLines, l => l.Contains("/hello -> 200", StringComparison.Ordinal) && l.EndsWith("[h2 -> h2]", StringComparison.Ordinal));
        Assert.Contains(flowLines, l => l.Contains("/hello -> 200", StringComparison.Ordinal) && l.EndsWith("[h1 -> h1]", StringComparison.Ordinal));
        Assert.Equal(["h1 -> h1", "h2 -> h2"], protocols.Order(StringComparer.Ordinal));
    }

    /// <summary>A port nothing listens on (bound, then released).</summary>
    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async Task A_content_length_body_ends_with_end_stream_on_its_last_data_frame()
    {
        await using var origin = RawOrigin.Recording("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        await client.SettledAsync();
        client.Headers(1, "GET", "/", endStream: true);
        await client.FlushAsync();

        // RFC 9113 §8.1: the DATA frame that completes the Content-Length carries END_STREAM; no empty DATA follows.
        var frames = new List<ReceivedFrame>();
        while (frames.Count == 0 || (frames[^1].Flags & FrameFlags.EndStream) == 0)
        {
            var frame = await client.ReadUntilAsync(f => f.StreamId == 1);
            Assert.NotNull(frame);
            frames.Add(frame);
        }

        Assert.Equal([FrameType.Headers, FrameType.Data], frames.Select(f => f.Type));
        Assert.Equal("hello", Encoding.ASCII.GetString(frames[1].Payload));
    }

    /// <summary>Sequential streams on one connection, alternating a declared Content-Length and none, each body of a
    /// different length: the connection pools its stream objects (issue 15, per-stream allocation), and a recycled one
    /// that kept its predecessor's Content-Length, received octets, body pipe or response sink would reset the stream
    /// or answer with another stream's body.</summary>
    /// <remarks>Which stream objects are reused depends on when each finished task was recycled; the outcome does not:
    /// every stream must echo its own body whatever object served it.</remarks>
    [Fact]
    public async Task Each_stream_of_a_connection_gets_its_own_body_back()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        await client.SettledAsync();
        for (var i = 0; i < 24; i++)
        {
            var id = (2 * i) + 1;
            var body = new string((char)('a' + i), 3 + (i * 7));
            (string, string)[] length = i % 2 == 0 ? [("content-length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture))] : [];
            client.Headers(id, "POST", "/echo", endStream: false, length);
            client.Data(id, Encoding.ASCII.GetBytes(body), endStream: true);
            await client.FlushAsync();
            Assert.Equal((true, body), await ReadResponseAsync(client, id));
        }
    }

    /// <summary>Frames of <paramref name="streamId"/> until END_STREAM: whether a HEADERS came, and the DATA as text.</summary>
    internal static async Task<(bool Headers, string Body)> ReadResponseAsync(H2RawClient client, int streamId)
    {
        var headers = false;
        var body = new StringBuilder();
        while (await client.ReadFrameAsync() is { } frame)
        {
            if (frame.StreamId != streamId)
            {
                continue;
            }

            Assert.NotEqual(FrameType.RstStream, frame.Type);
            headers |= frame.Type == FrameType.Headers;
            if (frame.Type == FrameType.Data)
            {
                body.Append(Encoding.UTF8.GetString(frame.Payload));
            }

            if ((frame.Flags & FrameFlags.EndStream) != 0)
            {
                return (headers, body.ToString());
            }
        }

        throw new EndOfStreamException($"the connection closed before stream {streamId} ended");
    }
}
