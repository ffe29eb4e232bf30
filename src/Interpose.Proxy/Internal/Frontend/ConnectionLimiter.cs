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
    /// <param name="refusal">Why it was refused; <see cref="ConnectionRefusal.None"/> when admitted.</param>
    public IPAddress? TryAdmit(Socket socket, out ConnectionRefusal refusal)
    {
        refusal = ConnectionRefusal.NotAllowed;
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
                refusal = ConnectionRefusal.TotalLimit;
                return null;
            }

            _perClient.TryGetValue(address, out var count);
            if (count >= _options.MaxConnectionsPerClient)
            {
                ProxyLog.ConnectionLimitReached(_logger, remote, "per client", _options.MaxConnectionsPerClient);
                refusal = ConnectionRefusal.ClientLimit;
                return null;
            }

            _perClient[address] = count + 1;
            _total++;
            refusal = ConnectionRefusal.None;
            return address;
        }
    }

    /// <summary>What the client's 503 says for a limit (null for a client outside the allowed networks: no answer).</summary>
    public string? Reason(ConnectionRefusal refusal) => refusal switch
    {
        ConnectionRefusal.TotalLimit => "too many open connections (limit " + _options.MaxConnections.ToString(CultureInfo.InvariantCulture) + ")",
        ConnectionRefusal.ClientLimit => "too many open connections from this client (limit " + _options.MaxConnectionsPerClient.ToString(CultureInfo.InvariantCulture) + ")",
        _ => null,
    };

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

/// <summary>Why <see cref="ConnectionLimiter.TryAdmit"/> refused a connection.</summary>
internal enum ConnectionRefusal
{
    /// <summary>Admitted.</summary>
    None,

    /// <summary>The client is outside <see cref="ProxyOptions.AllowedClients"/> (or its address is unknown): closed unanswered.</summary>
    NotAllowed,

    /// <summary><see cref="ProxyOptions.MaxConnections"/> reached: 503.</summary>
    TotalLimit,

    /// <summary><see cref="ProxyOptions.MaxConnectionsPerClient"/> reached for this address: 503.</summary>
    ClientLimit,
}
