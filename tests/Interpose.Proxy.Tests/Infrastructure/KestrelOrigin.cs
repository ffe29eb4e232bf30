using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>A real ASP.NET Core (Kestrel) origin on 127.0.0.1, plain or TLS, with the routes a test maps.</summary>
public sealed class KestrelOrigin : IAsyncDisposable
{
    private readonly WebApplication _app;

    private KestrelOrigin(WebApplication app, int port, bool tls)
    {
        _app = app;
        Port = port;
        IsTls = tls;
    }

    public int Port { get; }

    public bool IsTls { get; }

    /// <summary>The origin's base URL with the given host name (the proxy resolves names through the test resolver).</summary>
    public Uri Url(string path = "/", string host = "localhost") => new($"{(IsTls ? "https" : "http")}://{host}:{Port}{path}");

    /// <param name="map">The routes.</param>
    /// <param name="certificate">TLS with this certificate; null: plain.</param>
    /// <param name="configure">More set-up of the host.</param>
    /// <param name="protocols">What the endpoint speaks: Kestrel's default (HTTP/1.1 and HTTP/2 over TLS, HTTP/1.1 on
    /// plain) unless given (Http1 for an h1-only origin, Http2 for an h2-only or h2c origin).</param>
    public static async Task<KestrelOrigin> StartAsync(Action<WebApplication> map, X509Certificate2? certificate = null, Action<WebApplicationBuilder>? configure = null, HttpProtocols? protocols = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                if (protocols is { } p)
                {
                    listen.Protocols = p;
                }

                if (certificate is not null)
                {
                    listen.UseHttps(certificate);
                }
            });
        });
        configure?.Invoke(builder);
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new KestrelOrigin(app, new Uri(address).Port, certificate is not null);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
