using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Admission at accept: the client allow-list, then the total and per-address connection caps. A refused connection
/// is closed before a single byte is read, so a flood from one address costs the proxy one accept each and nothing
/// else, and everyone else goes on being served.
/// </summary>
internal sealed class ConnectionLimiter
{
    private readonly ProxyOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<IPAddress, int> _perClient = [];
    private readonly Lock _lock = new();
    private int _total;

    public ConnectionLimiter(ProxyOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
    }

    /// <summary>Open connections admitted and not yet released.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _total;
            }
        }
    }

    /// <summary>The client's address when admitted (to hand back to <see cref="Release"/>); null when refused (and logged).</summary>
    /// <param name="socket">The accepted connection.</param>
    /// <param name="overload">
    /// When refused for a connection limit, the reason in a few words, for the client's 503; null when admitted or when
    /// the client is outside the allowed networks (closed without an answer, as a firewall would).
    /// </param>
    public IPAddress? TryAdmit(Socket socket, out string? overload)
    {
        overload = null;
        if (socket.RemoteEndPoint is not IPEndPoint remote)
        {
            return null;
        }

        // A dual-mode listener reports IPv4 clients as ::ffff:a.b.c.d; the allow-list and the caps use the IPv4 form.
        var address = remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address;
        if (_options.AllowedClients.Count > 0 && !_options.AllowedClients.Any(n => n.Contains(address)))
        {
            ProxyLog.ClientNotAllowed(_logger, remote);
            return null;
        }

        lock (_lock)
        {
            if (_total >= _options.MaxConnections)
            {
                ProxyLog.ConnectionLimitReached(_logger, remote, "total", _options.MaxConnections);
                overload = "too many open connections (limit " + _options.MaxConnections.ToString(CultureInfo.InvariantCulture) + ")";
                return null;
            }

            _perClient.TryGetValue(address, out var count);
            if (count >= _options.MaxConnectionsPerClient)
            {
                ProxyLog.ConnectionLimitReached(_logger, remote, "per client", _options.MaxConnectionsPerClient);
                overload = "too many open connections from this client (limit " + _options.MaxConnectionsPerClient.ToString(CultureInfo.InvariantCulture) + ")";
                return null;
            }

            _perClient[address] = count + 1;
            _total++;
            return address;
        }
    }

    /// <summary>Frees the slot of a connection admitted for <paramref name="address"/>.</summary>
    public void Release(IPAddress address)
    {
        lock (_lock)
        {
            _total--;
            var count = _perClient[address] - 1;
            if (count == 0)
            {
                // Entries live only while connections do, so the table is bounded by MaxConnections.
                _perClient.Remove(address);
            }
            else
            {
                _perClient[address] = count;
            }
        }
    }
}
