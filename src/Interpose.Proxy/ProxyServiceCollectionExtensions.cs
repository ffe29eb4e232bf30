using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy;

/// <summary>Runs Interpose inside the .NET Generic Host.</summary>
public static class ProxyServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="ProxyServer"/> (singleton) and a hosted service that starts it with the host and stops it
    /// gracefully on shutdown.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options (listen addresses, addons, CA...).</param>
    /// <returns>The same collection.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IServiceCollection AddInterpose(this IServiceCollection services, Action<ProxyOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.TryAddSingleton(provider =>
        {
            var options = new ProxyOptions();
            configure(options);
            return new ProxyServer(options, provider.GetService<ILoggerFactory>());
        });
        services.AddHostedService<ProxyHostedService>();
        return services;
    }
}

/// <summary>Starts and stops the registered <see cref="ProxyServer"/> with the host.</summary>
internal sealed class ProxyHostedService(ProxyServer server) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => server.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => server.StopAsync(cancellationToken);
}
