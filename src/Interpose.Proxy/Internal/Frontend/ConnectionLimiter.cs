using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Admission at accept: the client allow-list, then the total and per-address connection caps. At a cap, room is made
/// by shedding the connection that made the least progress (the oldest one still without a complete first request
/// head after <see cref="ShedGrace"/>); only when there is none is the newcomer refused. A refused connection is closed
/// before a single byte is read, so a flood from one address costs the proxy one accept each and nothing else, and
/// everyone else goes on being served.
/// </summary>
/// <remarks>
/// Stalled heads fill a cap as well as busy clients do: hundreds of connections that send half a request head and
/// wait (from one address: a NAT, localhost) would otherwise lock the well-behaved client at that address out until
/// the request-head timeout. A connection that completed a request head is never shed: it is mid-exchange, or idle
/// between exchanges that the client may still resume, and closing it could lose a response. Bookkeeping is O(1) per
/// accept, per first head and per close: the connections still waiting for their first head are kept in accept order,
/// once for all clients and once per address, so the oldest is always the first.
/// </remarks>
internal sealed class ConnectionLimiter
{
    /// <summary>
    /// How long a connection may go without a complete first request head before a cap lets it be shed: 1 s. A client
    /// sends its request head as soon as its connection is accepted, so a complete head arrives within one client-to-
    /// proxy round trip (under 1 ms on loopback, rarely over 300 ms even across continents); a connection still without
    /// one after a second is stalled, slow on purpose, or a speculative browser pre-connection that it reopens on need.
    /// Short, so a well-behaved client behind the same address waits at most this long for room in a flood.
    /// </summary>
    internal static readonly TimeSpan ShedGrace = TimeSpan.FromSeconds(1);

    private readonly ProxyOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<IPAddress, ClientConnections> _perClient = [];

    // Every admitted connection still without a complete first request head, oldest first.
    private readonly LinkedList<AdmittedConnection> _waitingForHead = new();
    private readonly Lock _lock = new();
    private int _total;

    public ConnectionLimiter(ProxyOptions options, ILogger logger)
    {
        _options = options;
        _time = options.TimeProvider;
        _logger = logger;
    }

    /// <summary>Open connections admitted and not yet released or shed.</summary>
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

    /// <summary>
    /// The admitted connection (to mark its first head and release it); null when refused (and logged). When a cap was
    /// reached and a stalled connection was shed to make room, it is closed (and logged) before this returns.
    /// </summary>
    /// <param name="socket">The accepted connection.</param>
    /// <param name="refusal">Why it was refused; <see cref="ConnectionRefusal.None"/> when admitted.</param>
    /// <param name="shed">Which cap a connection was shed for; <see cref="ConnectionRefusal.None"/> when none was.</param>
    public AdmittedConnection? TryAdmit(Socket socket, out ConnectionRefusal refusal, out ConnectionRefusal shed)
    {
        refusal = ConnectionRefusal.NotAllowed;
        shed = ConnectionRefusal.None;
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

        var now = _time.GetTimestamp();
        AdmittedConnection? admitted = null;
        AdmittedConnection? victim = null;
        refusal = ConnectionRefusal.None;
        lock (_lock)
        {
            var clientFull = _perClient.TryGetValue(address, out var client) && client.Count >= _options.MaxConnectionsPerClient;
            var totalFull = _total >= _options.MaxConnections;
            if (clientFull || totalFull)
            {
                // Shedding one of this client's own connections frees a per-client and a total slot; shedding any
                // client's frees a total slot only, so at its own cap a client can only make room among its own.
                var cap = clientFull ? ConnectionRefusal.ClientLimit : ConnectionRefusal.TotalLimit;
                victim = Stalled(clientFull ? client!.WaitingForHead : _waitingForHead, now);
                if (victim is null)
                {
                    refusal = cap;
                }
                else
                {
                    shed = cap;
                    Forget(victim);
                }
            }

            if (refusal == ConnectionRefusal.None)
            {
                admitted = Add(socket, remote, address, now);
            }
        }

        // Logged and closed outside the lock: neither waits on the network, but neither needs the lock either.
        if (victim is not null)
        {
            var limit = shed == ConnectionRefusal.ClientLimit ? _options.MaxConnectionsPerClient : _options.MaxConnections;
            var waited = _time.GetElapsedTime(victim.AcceptedAt, now);
            ProxyLog.ConnectionShed(_logger, victim.Remote, (long)waited.TotalMilliseconds, shed == ConnectionRefusal.ClientLimit ? "per client" : "total", limit);

            // It never sent a complete request, so there is nothing to answer (RFC 9112 §9.6 lets either side close
            // at any time); closing its socket also ends its session's pending read.
            victim.Socket.Dispose();
        }

        if (admitted is null)
        {
            var limit = refusal == ConnectionRefusal.ClientLimit ? _options.MaxConnectionsPerClient : _options.MaxConnections;
            ProxyLog.ConnectionLimitReached(_logger, remote, refusal == ConnectionRefusal.ClientLimit ? "per client" : "total", limit);
        }

        return admitted;
    }

    /// <summary>What the client's 503 says for a limit (null for a client outside the allowed networks: no answer).</summary>
    public string? Reason(ConnectionRefusal refusal) => refusal switch
    {
        ConnectionRefusal.TotalLimit => "too many open connections (limit " + _options.MaxConnections.ToString(CultureInfo.InvariantCulture) + ")",
        ConnectionRefusal.ClientLimit => "too many open connections from this client (limit " + _options.MaxConnectionsPerClient.ToString(CultureInfo.InvariantCulture) + ")",
        _ => null,
    };

    /// <summary>The connection completed its first request head: from now on, no cap sheds it.</summary>
    public void FirstRequestHeadReceived(AdmittedConnection connection)
    {
        lock (_lock)
        {
            if (connection.AllNode is { } all)
            {
                _waitingForHead.Remove(all);
                connection.AllNode = null;
            }

            if (connection.ClientNode is { } node)
            {
                node.List!.Remove(node);
                connection.ClientNode = null;
            }
        }
    }

    /// <summary>Frees the slot of an admitted connection (nothing when it was shed: its slot went to a newcomer).</summary>
    public void Release(AdmittedConnection connection)
    {
        lock (_lock)
        {
            if (!connection.Released)
            {
                Forget(connection);
            }
        }
    }

    /// <summary>Counts a new connection in, at the end of the waiting lists. Under the lock.</summary>
    private AdmittedConnection Add(Socket socket, IPEndPoint remote, IPAddress address, long now)
    {
        if (!_perClient.TryGetValue(address, out var client))
        {
            client = new ClientConnections();
            _perClient[address] = client;
        }

        var connection = new AdmittedConnection(this, socket, remote, address, now);
        client.Count++;
        _total++;
        connection.ClientNode = client.WaitingForHead.AddLast(connection);
        connection.AllNode = _waitingForHead.AddLast(connection);
        return connection;
    }

    /// <summary>The oldest connection of <paramref name="waiting"/> if it is past <see cref="ShedGrace"/>.</summary>
    private AdmittedConnection? Stalled(LinkedList<AdmittedConnection> waiting, long now) =>
        waiting.First?.Value is { } oldest && _time.GetElapsedTime(oldest.AcceptedAt, now) >= ShedGrace ? oldest : null;

    /// <summary>Takes a connection out of the counts and the waiting lists. Under the lock.</summary>
    private void Forget(AdmittedConnection connection)
    {
        connection.Released = true;
        if (connection.AllNode is { } all)
        {
            _waitingForHead.Remove(all);
            connection.AllNode = null;
        }

        var client = _perClient[connection.Address];
        if (connection.ClientNode is { } node)
        {
            client.WaitingForHead.Remove(node);
            connection.ClientNode = null;
        }

        _total--;
        if (--client.Count == 0)
        {
            // Entries live only while connections do, so the table is bounded by MaxConnections.
            _perClient.Remove(connection.Address);
        }
    }

    /// <summary>One address's open connections: how many, and those still without a first request head, oldest first.</summary>
    private sealed class ClientConnections
    {
        public int Count;

        public readonly LinkedList<AdmittedConnection> WaitingForHead = new();
    }
}

/// <summary>A connection <see cref="ConnectionLimiter"/> admitted: what it needs to shed it, and its place in the lists.</summary>
internal sealed class AdmittedConnection
{
    private readonly ConnectionLimiter _limiter;
    private int _headReceived;

    public AdmittedConnection(ConnectionLimiter limiter, Socket socket, IPEndPoint remote, IPAddress address, long acceptedAt)
    {
        _limiter = limiter;
        Socket = socket;
        Remote = remote;
        Address = address;
        AcceptedAt = acceptedAt;
    }

    public Socket Socket { get; }

    public IPEndPoint Remote { get; }

    /// <summary>The client's address as the caps count it (IPv4 for an IPv4-mapped one).</summary>
    public IPAddress Address { get; }

    /// <summary>When it was admitted, a <see cref="TimeProvider"/> timestamp.</summary>
    public long AcceptedAt { get; }

    // Owned by the limiter, under its lock.
    internal LinkedListNode<AdmittedConnection>? ClientNode { get; set; }

    internal LinkedListNode<AdmittedConnection>? AllNode { get; set; }

    internal bool Released { get; set; }

    /// <summary>Marks the first complete request head (later calls do nothing): from now on, the connection is never shed.</summary>
    public void FirstRequestHeadReceived()
    {
        if (Interlocked.Exchange(ref _headReceived, 1) == 0)
        {
            _limiter.FirstRequestHeadReceived(this);
        }
    }
}

/// <summary>Why <see cref="ConnectionLimiter.TryAdmit"/> refused a connection, or which cap it shed one for.</summary>
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
