using System.Net;
using System.Net.NetworkInformation;
using Interpose.Proxy;

namespace Interpose.Web;

/// <summary>
/// Keeps the web UI's own traffic out of the flows when it goes through the proxy: a browser set to send everything to
/// the proxy (a phone under test, a desktop browser without a loopback bypass) fetches the UI's page and API through
/// it. This addon, first among the proxy's addons, tags a request addressed to the UI (its port, at its address,
/// <c>localhost</c> or, for a UI on a wildcard address, any address of this machine) with
/// <see cref="FlowRecorder.NotRecordedTag"/>: it is neither recorded nor paused by the intercept filter, so the UI
/// cannot fill its own list or pause the very calls that would resume a flow.
/// </summary>
public sealed class WebUiTrafficMarker : ProxyAddon
{
    private volatile Target? _target;

    /// <inheritdoc/>
    public override string Name => "web-ui-traffic";

    /// <summary>Starts marking requests to <paramref name="endPoint"/>, the UI's address once it listens.</summary>
    /// <param name="endPoint">The UI's bound address and port.</param>
    /// <exception cref="ArgumentNullException"><paramref name="endPoint"/> is null.</exception>
    public void Serve(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var address = Normal(endPoint.Address);
        var wildcard = address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);

        // A wildcard UI answers on every address of the machine: read them once, as the UI starts.
        IPAddress[] own = wildcard
            ? [.. NetworkInterface.GetAllNetworkInterfaces().SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(a => Normal(a.Address))]
            : [address];
        _target = new Target(endPoint.Port, own, LocalhostToo: wildcard || IPAddress.IsLoopback(address));
    }

    /// <summary>Whether a request for <paramref name="host"/>:<paramref name="port"/> reaches the UI.</summary>
    /// <param name="host">The request's host: a name or an IP literal (brackets allowed).</param>
    /// <param name="port">The request's port.</param>
    /// <returns>True for the UI's own address.</returns>
    internal bool IsUi(string host, int port)
    {
        if (_target is not { } target || port != target.Port)
        {
            return false;
        }

        if (IPAddress.TryParse(host.AsSpan().Trim("[]"), out var ip))
        {
            return Array.IndexOf(target.Addresses, Normal(ip)) >= 0;
        }

        return target.LocalhostToo && host.Equals("localhost", StringComparison.OrdinalIgnoreCase);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentNullException"><paramref name="exchange"/> is null.</exception>
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (IsUi(exchange.Request.Host, exchange.Request.Port))
        {
            exchange.Tags[FlowRecorder.NotRecordedTag] = Name;
        }

        return default;
    }

    private static IPAddress Normal(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private sealed record Target(int Port, IPAddress[] Addresses, bool LocalhostToo);
}
