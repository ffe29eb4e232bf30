using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>ConnectionStrategy.Eager: the origin connection and the leaf are made ahead of the tunnel's first request.</summary>
public sealed class EagerConnectionTests(ITestOutputHelper output)
{
    /// <summary>Safety bound on waits for the proxy's own events, so a regression fails instead of hanging.</summary>
    private static readonly TimeSpan EventWait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Eager_opens_the_origin_connection_before_any_request_and_the_first_request_uses_it()
    {
        await using var origin = await Origins.StartTlsAsync();
        var events = new EventRecorder();
        await using var proxy = await StartEagerAsync(events);

        await using var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);
        var connected = await events.ServerConnected.Task.WaitAsync(EventWait);
        Assert.Equal(["ServerConnecting", "ServerConnected"], events.Names);

        var response = await GetAsync(tunnel, origin.Port, "/hello");

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Contains("hello from origin", response, StringComparison.Ordinal);
        Assert.Equal(["ServerConnecting", "ServerConnected", "RequestHeaders"], events.Names.Take(3));
        Assert.Same(connected, Assert.Single(events.Exchanges).Server);
    }

    [Fact]
    public async Task Lazy_the_default_connects_after_the_request_hooks()
    {
        await using var origin = await Origins.StartTlsAsync();
        var events = new EventRecorder();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(events));
        Assert.Equal(ConnectionStrategy.Lazy, proxy.Options.ConnectionStrategy);

        await using var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);
        var response = await GetAsync(tunnel, origin.Port, "/hello");

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Equal(["RequestHeaders", "ServerConnecting", "ServerConnected"], events.Names.Take(3));
    }

    [Fact]
    public async Task An_eager_connect_that_fails_is_the_first_requests_502_with_the_reason()
    {
        await using var origin = await KestrelOrigin.StartAsync(Origins.MapBasics, TestPki.SelfSigned("localhost"));
        var events = new EventRecorder();
        await using var proxy = await StartEagerAsync(events);

        await using var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);
        await events.ServerConnectFailed.Task.WaitAsync(EventWait);
        var response = await GetAsync(tunnel, origin.Port, "/hello");

        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Contains("self-signed", response, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(["ServerConnecting", "ServerConnectFailed", "RequestHeaders"], events.Names);
        Assert.Equal(ExchangePhase.Tls, Assert.Single(events.Exchanges).Error?.Phase);
    }

    [Fact]
    public async Task An_eager_connection_no_request_used_is_closed_with_the_client_connection()
    {
        await using var origin = await Origins.StartTlsAsync();
        var events = new EventRecorder();
        await using var proxy = await StartEagerAsync(events);

        // A client that completes its handshake and leaves without a request, once the origin connection is open.
        var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);
        await events.ServerConnected.Task.WaitAsync(EventWait);
        await tunnel.DisposeAsync();
        await events.ClientDisconnected.Task.WaitAsync(EventWait);

        // Closed before the client's disconnection was reported: nothing of it is left for the proxy's shutdown.
        Assert.Equal(["ServerConnecting", "ServerConnected", "ServerDisconnected"], events.Names);
    }

    [Fact]
    public async Task An_eager_connect_still_in_progress_is_cancelled_when_the_client_leaves()
    {
        // An origin that accepts and never answers the ClientHello: the eager TLS handshake waits until cancelled.
        var accepted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            accepted.TrySetResult();
            await RawOrigin.WaitForCloseAsync(stream);
        });
        var events = new EventRecorder();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.ConnectionStrategy = ConnectionStrategy.Eager;
            o.Addons.Add(events);

            // Far longer than the wait below: only the cancellation can end the eager handshake in time.
            o.Timeouts.TlsHandshake = TimeSpan.FromMinutes(10);
        });

        var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);
        await accepted.Task.WaitAsync(EventWait);
        await tunnel.DisposeAsync();
        await events.ClientDisconnected.Task.WaitAsync(EventWait);

        // Cancelled, not failed: no connect failure is reported for a connection nobody needs any more.
        Assert.Equal(["ServerConnecting"], events.Names);
    }

    [Fact]
    public async Task Eager_forges_the_leaf_for_the_connect_host_before_the_client_hello()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.ConnectionStrategy = ConnectionStrategy.Eager);
        var cache = proxy.Server.LeafCache!;

        await using var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);

        // The CONNECT started the forge (a miss); the handshake's lookup found it cached or in flight (a hit).
        Assert.Equal(1, cache.ForgeCount);
        Assert.Equal(1, cache.Misses);
        Assert.Equal(1, cache.Hits);
    }

    [Fact]
    public async Task Eager_opens_the_tcp_connection_when_the_connect_arrives_and_the_tunnel_uses_it()
    {
        var accepted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string? originSni = null;
        using var originCertificate = TestPki.Issue(TestPki.OriginRoot, "localhost");
        await using var origin = new RawOrigin(async stream =>
        {
            accepted.TrySetResult();
            await AnswerOnceOverTlsAsync(stream, originCertificate, sni => originSni = sni);
        });
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.ConnectionStrategy = ConnectionStrategy.Eager;

            // Far longer than the wait below: without the eager socket nothing would connect before the ClientHello
            // (the server-speaks-first wait is the only other way the origin is reached while the client is silent).
            o.Timeouts.ServerFirstWait = TimeSpan.FromMinutes(10);
        });

        // The CONNECT alone, not a byte of TLS yet: the origin is connected to.
        var tunnel = await RawClient.TunnelAsync(proxy.Port, "localhost", origin.Port);
        await accepted.Task.WaitAsync(EventWait);

        await using var ssl = await ClientTlsAsync(tunnel, proxy, "localhost");
        var response = await GetAsync(ssl, origin.Port, "/");

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Equal(1, origin.AcceptedConnections);
        Assert.Equal("localhost", originSni);
    }

    [Fact]
    public async Task An_sni_other_than_the_connect_host_gets_its_own_leaf_and_is_sent_to_the_origin_on_the_early_socket()
    {
        // The CONNECT names localhost (its leaf is forged ahead, its TCP connection opened), the ClientHello another
        // name: the client must get a leaf for the name it asked for, and the origin that name as its SNI.
        const string OtherName = "other.example.test";
        string? originSni = null;
        using var originCertificate = TestPki.Issue(TestPki.OriginRoot, OtherName);
        await using var origin = new RawOrigin(stream => AnswerOnceOverTlsAsync(stream, originCertificate, sni => originSni = sni));
        await using var proxy = await TestProxy.StartAsync(output, o => o.ConnectionStrategy = ConnectionStrategy.Eager);

        var tunnel = await RawClient.TunnelAsync(proxy.Port, "localhost", origin.Port);
        await using var ssl = await ClientTlsAsync(tunnel, proxy, OtherName);
        var leaf = Assert.IsType<X509Certificate2>(ssl.RemoteCertificate);
        var response = await GetAsync(ssl, origin.Port, "/");

        Assert.True(leaf.MatchesHostname(OtherName), leaf.Subject);
        Assert.False(leaf.MatchesHostname("localhost"), leaf.Subject);
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Equal(OtherName, originSni);
        Assert.Equal(1, origin.AcceptedConnections);

        // Both names were forged: the CONNECT host ahead, the SNI for the handshake.
        Assert.Equal(2, proxy.Server.LeafCache!.ForgeCount);
    }

    [Fact]
    public async Task An_early_connect_the_origin_refuses_is_the_first_requests_502_in_the_connect_phase()
    {
        // A port nothing listens on: bound, then released.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var events = new EventRecorder();
        await using var proxy = await StartEagerAsync(events);

        await using var tunnel = await RawClient.TunnelAsync(proxy, "localhost", port, tls: true);
        var response = await GetAsync(tunnel, port, "/hello");

        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Equal(ExchangePhase.Connect, Assert.Single(events.Exchanges).Error?.Phase);
    }

    /// <summary>TLS as the origin (recording the SNI it was asked for), then one request answered and the connection closed.</summary>
    private static async Task AnswerOnceOverTlsAsync(Stream stream, X509Certificate2 certificate, Action<string> sni)
    {
        await using var ssl = new SslStream(stream);
        await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificateSelectionCallback = (_, name) =>
            {
                sni(name ?? "");
                return certificate;
            },
        });
        _ = await RawOrigin.ReadHeadAsync(ssl);
        await ssl.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"u8.ToArray());
    }

    /// <summary>The client's TLS inside an open tunnel, asking for <paramref name="serverName"/>, trusting the proxy's CA.</summary>
    private static async Task<SslStream> ClientTlsAsync(Stream tunnel, TestProxy proxy, string serverName)
    {
        var ssl = new SslStream(tunnel, leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            RemoteCertificateValidationCallback = (_, cert, _, errors) => TestProxy.ChainsTo(cert, proxy.Authority.Certificate, errors),
        });
        return ssl;
    }

    private Task<TestProxy> StartEagerAsync(EventRecorder events) => TestProxy.StartAsync(output, o =>
    {
        o.ConnectionStrategy = ConnectionStrategy.Eager;
        o.Addons.Add(events);
    });

    private static async Task<string> GetAsync(Stream tunnel, int port, string path)
    {
        await tunnel.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"));
        return Encoding.Latin1.GetString(await RawClient.ReadToEndAsync(tunnel));
    }

    /// <summary>Records the order of the connection hooks and the first request hook.</summary>
    private sealed class EventRecorder : ProxyAddon
    {
        private readonly ConcurrentQueue<string> _names = new();

        public TaskCompletionSource<ServerConnection> ServerConnected { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource ServerConnectFailed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource ClientDisconnected { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<HttpExchange> Exchanges { get; } = new();

        public string[] Names => [.. _names];

        public override ValueTask ServerConnectingAsync(ServerConnection server, CancellationToken cancellationToken) => Record("ServerConnecting");

        public override ValueTask ServerConnectedAsync(ServerConnection server, CancellationToken cancellationToken)
        {
            // Recorded before the waiter is released, so it sees this event in the list.
            var recorded = Record("ServerConnected");
            ServerConnected.TrySetResult(server);
            return recorded;
        }

        public override ValueTask ServerConnectFailedAsync(ServerConnection server, ExchangeError error, CancellationToken cancellationToken)
        {
            var recorded = Record("ServerConnectFailed");
            ServerConnectFailed.TrySetResult();
            return recorded;
        }

        public override ValueTask ServerDisconnectedAsync(ServerConnection server, CancellationToken cancellationToken) => Record("ServerDisconnected");

        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            Exchanges.Enqueue(exchange);
            return Record("RequestHeaders");
        }

        public override ValueTask ClientDisconnectedAsync(ClientConnection client, CancellationToken cancellationToken)
        {
            ClientDisconnected.TrySetResult();
            return default;
        }

        private ValueTask Record(string name)
        {
            _names.Enqueue(name);
            return default;
        }
    }
}
