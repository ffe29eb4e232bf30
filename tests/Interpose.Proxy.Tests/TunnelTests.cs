using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>CONNECT tunnels that carry something other than intercepted TLS: raw TCP and server-first protocols.</summary>
public sealed class TunnelTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Server_first_protocol_gets_its_banner_through()
    {
        await using var origin = new RawOrigin(async stream =>
        {
            await stream.WriteAsync("220 smtp.test ESMTP ready\r\n"u8.ToArray());
            var line = new byte[6];
            await stream.ReadExactlyBoundedAsync(line);
            await stream.WriteAsync(Encoding.ASCII.GetBytes("250 got " + Encoding.ASCII.GetString(line)));
            await RawOrigin.WaitForCloseAsync(stream);
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.Timeouts.ServerFirstWait = TimeSpan.FromMilliseconds(50));

        await using var client = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: false);
        var banner = await RawClient.ReadAsciiAsync(client, "220 smtp.test ESMTP ready\r\n".Length);
        await client.WriteAsync("EHLO\r\n"u8.ToArray());
        var reply = await RawClient.ReadAsciiAsync(client, "250 got EHLO\r\n".Length);

        Assert.Equal("220 smtp.test ESMTP ready\r\n", banner);
        Assert.Equal("250 got EHLO\r\n", reply);
    }

    [Fact]
    public async Task A_client_hello_sent_after_the_server_first_wait_is_still_intercepted()
    {
        await using var origin = await Origins.StartTlsAsync();
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            // The proxy gives up waiting for the client's first byte at once and connects to see who speaks first.
            o.Timeouts.ServerFirstWait = TimeSpan.FromTicks(1);
            o.Addons.Add(new ServerConnectedSignal(connected));
        });

        // A slow client: its ClientHello leaves only once the proxy has connected to the (silent) TLS origin.
        await using var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: false);
        await connected.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await using var tls = new SslStream(tunnel, leaveInnerStreamOpen: true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            RemoteCertificateValidationCallback = (_, cert, _, errors) => TestProxy.ChainsTo(cert, proxy.Authority.Certificate, errors),
        });
        await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET /hello HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"));
        var response = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(tls));

        // Intercepted: the certificate chained to the proxy's CA (the callback above), and the request went through.
        Assert.StartsWith("HTTP/1.1 200 ", response, StringComparison.Ordinal);
        Assert.Contains("hello from origin", response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Raw_tcp_is_relayed_both_ways_with_half_close()
    {
        await using var origin = new RawOrigin(async stream =>
        {
            // Echo everything until the client half-closes, then answer once more and close.
            var received = await RawClient.ReadToEndAsync(stream);
            await stream.WriteAsync(received);
            await stream.WriteAsync("BYE"u8.ToArray());
        });
        await using var proxy = await TestProxy.StartAsync(output);

        await using var client = (NetworkStream)await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: false);
        await client.WriteAsync("\u0001\u0002binary, not HTTP or TLS"u8.ToArray());
        client.Socket.Shutdown(SocketShutdown.Send);
        var all = await RawClient.ReadToEndAsync(client);

        Assert.Equal("\u0001\u0002binary, not HTTP or TLSBYE", Encoding.ASCII.GetString(all));
    }

    [Fact]
    public async Task Plain_http_inside_a_tunnel_is_proxied_as_http()
    {
        await using var origin = await Origins.StartPlainAsync();
        var seen = new List<string>();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new UrlRecorder(seen)));

        await using var client = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: false);
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET /hello HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"));
        var response = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Contains("hello from origin", response, StringComparison.Ordinal);
        Assert.Equal([$"http://localhost:{origin.Port}/hello"], seen);
    }

    /// <summary>Completes when the proxy has opened its first origin connection.</summary>
    private sealed class ServerConnectedSignal(TaskCompletionSource connected) : ProxyAddon
    {
        public override ValueTask ServerConnectedAsync(ServerConnection server, CancellationToken cancellationToken)
        {
            connected.TrySetResult();
            return default;
        }
    }

    private sealed class UrlRecorder(List<string> seen) : ProxyAddon
    {
        public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            lock (seen)
            {
                seen.Add(exchange.Request.Url.ToString());
            }

            return default;
        }
    }
}
