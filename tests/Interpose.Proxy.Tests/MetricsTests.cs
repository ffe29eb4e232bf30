using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>The <c>Interpose</c> meter: in process through a <see cref="MeterListener"/>, and as Prometheus text from the CLI.</summary>
public sealed class MetricsTests(ITestOutputHelper output) : IDisposable
{
    private const int Requests = 5;

    private readonly string _home = Directory.CreateTempSubdirectory("interpose-metrics-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public async Task Instruments_count_connections_exchanges_bytes_tls_and_certificates()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output);
        var meter = proxy.Server.Metrics!.Meter;
        var longs = new Dictionary<string, long>();
        var durations = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = instrument.Name;
            foreach (var tag in tags)
            {
                key += "|" + tag.Key + "=" + tag.Value;
            }

            lock (longs)
            {
                longs[key] = instrument.IsObservable ? value : longs.GetValueOrDefault(key) + value;
            }
        });
        listener.SetMeasurementEventCallback<double>((instrument, _, _, _) => Interlocked.Increment(ref durations));
        listener.Start();

        using (var client = proxy.CreateClient())
        {
            for (var i = 0; i < Requests; i++)
            {
                Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));
            }
        }

        listener.RecordObservableInstruments();
        await proxy.Server.StopAsync();

        long Get(string key)
        {
            lock (longs)
            {
                return longs.GetValueOrDefault(key);
            }
        }

        Assert.True(Get("interpose.exchanges|outcome=ok|protocol=h1 -> h1") >= Requests, Dump(longs));
        Assert.True(Get("interpose.bytes|direction=downstream") >= Requests * "hello from origin".Length, Dump(longs));
        Assert.True(Get("interpose.connections") >= 1, Dump(longs));
        Assert.Equal(0, Get("interpose.connections.active"));
        Assert.True(Get("interpose.tls.handshakes|side=client|result=ok") >= 1, Dump(longs));
        Assert.True(Get("interpose.tls.handshakes|side=upstream|result=ok") >= 1, Dump(longs));
        Assert.True(Get("interpose.certificates.forged") >= 1, Dump(longs));
        Assert.True(Get("interpose.certificates.cache|result=miss") >= 1, Dump(longs));
        Assert.True(Get("interpose.pool.idle") >= 1, Dump(longs));
        Assert.True(Volatile.Read(ref durations) >= Requests);
    }

    [Fact]
    public async Task Refused_connections_are_counted_by_reason()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.MaxConnections = 1);
        var reasons = new ConcurrentQueue<string>();
        using var listener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.connections.refused", "reason", reasons);

        // The one slot, held: a served keep-alive connection.
        await using var held = await RawClient.ConnectAsync(proxy);
        await held.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"GET {origin.Url("/hello")} HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200 ", await RawOrigin.ReadHeadAsync(held), StringComparison.Ordinal);
        await using var refused = await RawClient.ConnectAsync(proxy);
        var answer = await RawOrigin.ReadHeadAsync(refused);

        Assert.StartsWith("HTTP/1.1 503 ", answer, StringComparison.Ordinal);
        Assert.Equal(["total_limit"], reasons);
    }

    [Fact]
    public async Task Errors_are_counted_by_phase()
    {
        await using var proxy = await TestProxy.StartAsync(output);
        var phases = new ConcurrentQueue<string>();
        using var listener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.errors", "phase", phases);

        using var client = proxy.CreateClient();
        using var response = await client.GetAsync(new Uri($"http://localhost:{ClosedPort()}/"));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(["connect"], phases);
    }

    [Fact]
    public async Task Cli_serves_prometheus_text_at_metrics()
    {
        await using var origin = await Origins.StartPlainAsync();
        var (proxy, metricsPort) = await StartWithMetricsAsync();
        await using var _ = proxy;
        using (var handler = new HttpClientHandler { Proxy = new WebProxy(proxy.Url), UseProxy = true })
        using (var client = new HttpClient(handler))
        {
            for (var i = 0; i < Requests; i++)
            {
                Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));
            }
        }

        using var scraper = new HttpClient();
        var text = await scraper.GetStringAsync(new Uri($"http://127.0.0.1:{metricsPort}/metrics"));
        output.WriteLine(text);

        Assert.True(Value(text, "interpose_exchanges_total", "outcome=\"ok\"") >= Requests, text);
        Assert.True(Value(text, "interpose_bytes_total", "direction=\"downstream\"") > 0, text);
        Assert.True(Value(text, "interpose_connections_total", null) >= 1, text);
        Assert.Contains("interpose_exchange_duration_milliseconds_bucket", text, StringComparison.Ordinal);
        Assert.Contains(proxy.StandardError, l => l.Contains($"127.0.0.1:{metricsPort}/metrics", StringComparison.Ordinal));
        Assert.Equal(0, await proxy.TerminateAsync());
    }

    /// <summary>The value of the first sample of <paramref name="name"/> whose labels contain <paramref name="label"/>.</summary>
    private static double Value(string text, string name, string? label)
    {
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal)
                && (line.Length == name.Length || line[name.Length] is '{' or ' ')
                && (label is null || line.Contains(label, StringComparison.Ordinal)))
            {
                // name{labels} value [timestamp]
                var rest = line.Contains('{', StringComparison.Ordinal) ? line[(line.LastIndexOf('}') + 1)..] : line[name.Length..];
                return double.Parse(rest.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return -1;
    }

    [Fact]
    public async Task Cli_with_the_metrics_port_taken_says_so_in_one_line()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var port = ((IPEndPoint)taken.LocalEndPoint!).Port;

        var failed = await Assert.ThrowsAsync<InvalidOperationException>(() => InterposeProcess.StartAsync(Path.Combine(_home, "home"), "--metrics", $"127.0.0.1:{port}"));

        Assert.Contains($"interpose: --metrics 127.0.0.1:{port}: Address already in use", failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", failed.Message, StringComparison.Ordinal);
    }

    /// <summary>Tries of a port for the exporter before the test fails.</summary>
    private const int MetricsPortTries = 5;

    /// <summary>
    /// The CLI with its exporter on a port that was free when chosen. HttpListener takes no port 0, so the port is chosen
    /// first, and another socket (a test running beside this one) may take it before the exporter binds it: then the
    /// start is tried again on another port.
    /// </summary>
    private async Task<(InterposeProcess Proxy, int Port)> StartWithMetricsAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort();
            try
            {
                return (await InterposeProcess.StartAsync(Path.Combine(_home, "home"), "--metrics", $"127.0.0.1:{port}"), port);
            }
            catch (InvalidOperationException ex) when (attempt < MetricsPortTries && ex.Message.Contains("Address already in use", StringComparison.Ordinal))
            {
                output.WriteLine($"127.0.0.1:{port} was taken before the exporter bound it; another port");
            }
        }
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static int ClosedPort() => FreePort();

    private static string Dump(Dictionary<string, long> values)
    {
        lock (values)
        {
            return string.Join("\n", values.Select(kv => kv.Key + " = " + kv.Value));
        }
    }
}
