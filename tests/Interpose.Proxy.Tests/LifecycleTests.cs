using System.Net;
using System.Net.Sockets;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>Start, stop, run and dispose are safe to call in any order and more than once.</summary>
public sealed class LifecycleTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Start_and_stop_are_idempotent_and_dispose_after_stop_is_safe()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output);
        await proxy.Server.StartAsync();
        using var client = proxy.CreateClient();

        Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));
        await proxy.Server.StopAsync();
        await proxy.Server.StopAsync();
        await proxy.Server.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => proxy.Server.StartAsync());
        await AssertRefusedAsync(proxy.Port);
    }

    [Fact]
    public async Task Start_generates_the_shared_leaf_key_so_the_first_handshake_does_not()
    {
        await using var proxy = await TestProxy.StartAsync(output);

        var cache = proxy.Server.LeafCache!;
        Assert.True(cache.SharedKeyCreated);
        Assert.Equal(0, cache.ForgeCount);
    }

    [Fact]
    public async Task RunAsync_serves_until_cancelled_then_stops()
    {
        await using var origin = await Origins.StartPlainAsync();
        var options = new ProxyOptions { CertificateAuthority = TestCa.Value };
        options.ListenEndpoints.Clear();
        options.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        await using var server = new ProxyServer(options);
        using var stop = new CancellationTokenSource();

        var running = server.RunAsync(stop.Token);
        // With a CA given, starting completes synchronously: the listener is bound when RunAsync returns its task.
        Assert.Single(server.Endpoints);

        using var client = new System.Net.Http.HttpClient(new System.Net.Http.SocketsHttpHandler { Proxy = new WebProxy($"http://127.0.0.1:{server.Endpoints[0].Port}") });
        Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));
        await stop.CancelAsync();
        await running;

        await AssertRefusedAsync(server.Endpoints[0].Port);
    }

    [Fact]
    public async Task A_start_that_cannot_bind_releases_what_it_made_and_a_later_start_works()
    {
        using var taken = new Socket(SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        using var meters = new MeterCapture();
        var options = new ProxyOptions { CertificateAuthority = TestCa.Value, MeterFactory = meters };
        options.ListenEndpoints.Clear();
        options.ListenEndpoints.Add((IPEndPoint)taken.LocalEndPoint!);
        await using var server = new ProxyServer(options);

        await Assert.ThrowsAsync<SocketException>(() => server.StartAsync());

        // The failed start's meter was disposed with the rest: a listener started now sees none of its instruments.
        var failed = Assert.Single(meters.Created);
        using (var listener = new System.Diagnostics.Metrics.MeterListener())
        {
            var live = 0;
            listener.InstrumentPublished = (instrument, _) => live += ReferenceEquals(instrument.Meter, failed) ? 1 : 0;
            listener.Start();
            Assert.Equal(0, live);
        }

        // Started again on a free port, the server works.
        options.ListenEndpoints.Clear();
        options.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        await server.StartAsync();
        Assert.Single(server.Endpoints);
        Assert.Equal(2, meters.Created.Count);
    }

    /// <summary>Makes meters as the default factory would, and keeps each one.</summary>
    private sealed class MeterCapture : System.Diagnostics.Metrics.IMeterFactory
    {
        public List<System.Diagnostics.Metrics.Meter> Created { get; } = [];

        public System.Diagnostics.Metrics.Meter Create(System.Diagnostics.Metrics.MeterOptions options)
        {
            var meter = new System.Diagnostics.Metrics.Meter(options);
            Created.Add(meter);
            return meter;
        }

        public void Dispose()
        {
            foreach (var meter in Created)
            {
                meter.Dispose();
            }
        }
    }

    private static async Task AssertRefusedAsync(int port)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(() => socket.ConnectAsync(IPAddress.Loopback, port));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    private static class TestCa
    {
        public static readonly Interpose.Certificates.CertificateAuthority Value = Interpose.Certificates.CertificateAuthority.LoadOrCreate(
            new Interpose.Certificates.CertificateAuthorityOptions { Directory = Directory.CreateTempSubdirectory("interpose-lifecycle-").FullName });
    }
}
