using System.Collections.Concurrent;
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
