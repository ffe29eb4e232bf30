using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Web;

/// <summary>
/// The web UI: the page, and a JSON and server-sent-events API over a flow store, served by Kestrel on its own
/// listener. A browser that sends the UI's own requests through the proxy gets them neither recorded nor paused
/// (<see cref="WebUiTrafficMarker"/>).
/// </summary>
/// <remarks>
/// Security (docs/security.md, "Web UI"): every <c>/api</c> call carries the token in the
/// <c>X-Interpose-Token</c> header; a request whose Host is not the UI's own address (an IP literal or localhost with
/// the UI's port) is refused with 403 (DNS rebinding); every response carries a Content-Security-Policy without inline
/// or remote script and <c>X-Content-Type-Options: nosniff</c>; malformed input is a 400 with a reason.
/// </remarks>
public sealed class WebUiServer : IAsyncDisposable
{
    /// <summary>The header that carries the token.</summary>
    public const string TokenHeader = "X-Interpose-Token";

    /// <summary>Bytes of randomness in a generated token: 256 bits, as ASP.NET Core's antiforgery tokens.</summary>
    private const int TokenBytes = 32;

    /// <summary>How long a stop waits for requests still running (a download to a slow browser) before it aborts them:
    /// Kestrel's default is 30 s; the UI's requests are short, and its event streams end as the stop begins.</summary>
    private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(5);

    private readonly WebUiOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private WebApplication? _app;
    private WebApi? _api;

    /// <summary>Creates the server; <see cref="StartAsync"/> starts it.</summary>
    /// <param name="options">What to serve and where.</param>
    /// <param name="loggerFactory">Where the UI logs; nowhere when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">No store is given, or a proxy URL without its CA.</exception>
    /// <exception cref="InvalidOperationException">A non-loopback address without <see cref="WebUiOptions.AllowNonLoopback"/>.</exception>
    public WebUiServer(WebUiOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Store is null)
        {
            throw new ArgumentException("A flow store is required.", nameof(options));
        }

        if (options.ProxyUrl is not null && options.ProxyCertificateAuthority is null)
        {
            throw new ArgumentException("Replay through the proxy needs the proxy's CA certificate.", nameof(options));
        }

        if (!IPAddress.IsLoopback(options.EndPoint.Address) && !options.AllowNonLoopback)
        {
            throw new InvalidOperationException($"The web UI would listen on {options.EndPoint}, which is not a loopback address: anyone who reaches it and has the URL sees every flow. Allow it explicitly (--allow-open-proxy in the CLI).");
        }

        _options = options;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        Token = options.Token ?? Base64Url(RandomNumberGenerator.GetBytes(TokenBytes));
    }

    /// <summary>The secret the page sends with every API call.</summary>
    public string Token { get; }

    /// <summary>The address the UI listens on (the real port after start when 0 was asked for).</summary>
    /// <exception cref="InvalidOperationException">Not started.</exception>
    public IPEndPoint EndPoint { get; private set; } = new(IPAddress.Loopback, 0);

    /// <summary>The URL to open: the UI with its token.</summary>
    public Uri Url
    {
        get
        {
            // A wildcard address is reached on loopback from this machine.
            var shown = EndPoint.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, EndPoint.Port)
                : EndPoint.Address.Equals(IPAddress.IPv6Any) ? new IPEndPoint(IPAddress.IPv6Loopback, EndPoint.Port)
                : EndPoint;
            return new Uri("http://" + shown + "/?token=" + Token);
        }
    }

    /// <summary>Starts listening.</summary>
    /// <param name="cancellationToken">Abandons the start.</param>
    /// <returns>A task that completes when the UI accepts connections.</returns>
    /// <exception cref="IOException">The address is in use or cannot be bound.</exception>
    /// <exception cref="InvalidOperationException">Already started.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_app is not null)
        {
            throw new InvalidOperationException("The web UI is already started.");
        }

        var builder = WebApplication.CreateSlimBuilder();
        // Kestrel's own start-up lines would repeat what the CLI prints; the UI logs through its own events.
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = ShutdownTimeout);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(_options.EndPoint);
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = WebApi.MaxRequestBodyBytes;
        });
        var app = builder.Build();
        var logger = _loggerFactory.CreateLogger("Interpose.Web");
        var api = new WebApi(_options, Token, () => EndPoint, logger);
        api.Map(app);
        _api = api;
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;
        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var port = new Uri(address).Port;
        EndPoint = new IPEndPoint(_options.EndPoint.Address, port);
        WebLog.Listening(logger, EndPoint);
    }

    /// <summary>Stops listening; open event streams end at once (the browsers see their stream end), other requests
    /// are given a few seconds.</summary>
    /// <returns>A task that completes when stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }

        _api?.Dispose();
        _api = null;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
