using System.Net;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>Refuses unsafe or meaningless configurations before anything is bound.</summary>
internal static class StartupChecks
{
    /// <summary>Throws when the options would make an open proxy by accident, or a limit is not positive.</summary>
    /// <exception cref="InvalidOperationException">The configuration is refused; the message says what to change.</exception>
    public static void Validate(ProxyOptions options, ILogger logger)
    {
        if (options.MaxConnections < 1 || options.MaxConnectionsPerClient < 1)
        {
            throw new InvalidOperationException("MaxConnections and MaxConnectionsPerClient must be at least 1");
        }

        foreach (var port in options.AllowedConnectPorts)
        {
            if (port is < 1 or > 65535)
            {
                throw new InvalidOperationException($"AllowedConnectPorts: {port} is not a TCP port (1-65535)");
            }
        }

        // mitmproxy: "--ignore-hosts and --allow-hosts are mutually exclusive" (which would win is not obvious).
        if (options.IgnoreHosts.Count > 0 && options.AllowHosts.Count > 0)
        {
            throw new InvalidOperationException("IgnoreHosts (--ignore-hosts) and AllowHosts (--allow-hosts) cannot be combined: use one");
        }

        // An open proxy on a reachable address lets anyone relay through it, including into the proxy's own network
        // (SSRF against loopback and internal services): require credentials or an explicit opt-in.
        var exposed = options.ListenEndpoints.FirstOrDefault(e => !IPAddress.IsLoopback(e.Address));
        if (exposed is null || options.Authentication.IsEnabled)
        {
            return;
        }

        if (!options.AllowOpenProxy)
        {
            throw new InvalidOperationException(
                $"refusing to listen on {exposed} without proxy authentication: set users (--proxy-auth/--proxy-auth-file) " +
                "or, to run an open proxy on purpose, AllowOpenProxy (--allow-open-proxy)");
        }

        ProxyLog.OpenProxy(logger, exposed);
    }
}
