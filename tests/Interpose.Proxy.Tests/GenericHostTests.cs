using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Interpose.Proxy.Tests;

/// <summary><c>services.AddInterpose(...)</c>: the proxy starts and stops with a .NET Generic Host.</summary>
public sealed class GenericHostTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("interpose-host-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public async Task AddInterpose_starts_the_proxy_with_the_host_and_stops_it_with_the_host()
    {
        await using var origin = await Origins.StartPlainAsync();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddInterpose(o =>
        {
            o.ListenEndpoints.Clear();
            o.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
            o.ConfigDirectory = _home;
            o.Resolver = static (_, _) => ValueTask.FromResult(new[] { IPAddress.Loopback });
            o.Addons.Add(new MarkHosted());
        });
        using var host = builder.Build();

        await host.StartAsync();
        var proxy = host.Services.GetRequiredService<ProxyServer>();
        var endpoint = proxy.Endpoints.Single();
        using (var client = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"http://127.0.0.1:{endpoint.Port}"), UseProxy = true }))
        {
            var headers = await client.GetStringAsync(origin.Url("/headers"));
            Assert.Contains("X-Hosted: yes\n", headers, StringComparison.Ordinal);
        }

        await host.StopAsync();

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await socket.ConnectAsync(endpoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.True(File.Exists(Path.Combine(_home, "interpose-ca.pem")), "the CA is created in ConfigDirectory");
    }

    private sealed class MarkHosted : ProxyAddon
    {
        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            exchange.Request.Headers.Add("X-Hosted", "yes");
            return default;
        }
    }
}
