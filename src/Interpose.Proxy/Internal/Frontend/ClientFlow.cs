namespace Interpose.Proxy.Internal;

/// <summary>
/// What the layers of one client connection share, from accept to close: the runtime, the client's transport and
/// description, the step the connection is at (for the log line when it ends) and an origin connection opened ahead.
/// </summary>
internal sealed class ClientFlow(ProxyRuntime runtime, Transport client, ClientConnection info, AdmittedConnection? admission = null) : IAsyncDisposable
{
    public ProxyRuntime Runtime { get; } = runtime;

    public Transport Client { get; } = client;

    public ClientConnection Info { get; } = info;

    /// <summary>
    /// Whether a request head was completed on this connection (a CONNECT counts): until then, it is not idle between
    /// requests but waiting for its first one.
    /// </summary>
    public bool FirstHeadReceived { get; private set; }

    /// <summary>The step the connection is at; an exchange's pipeline keeps it current.</summary>
    public ExchangePhase Phase { get; set; }

    /// <summary>The origin connection opened for this tunnel ahead of its first request (ConnectionStrategy.Eager), until taken.</summary>
    public EagerConnection? Eager
    {
        get => Volatile.Read(ref _eager);
        set => Volatile.Write(ref _eager, value);
    }

    private EagerConnection? _eager;

    /// <summary>
    /// Heads are serialized here (request heads towards the origin, response heads towards the client), and small
    /// bodies coalesced with them. One per client connection: the proxy's own HTTP/1.1 connection and the one inside
    /// its CONNECT tunnel never serve at the same time, and within an exchange a request head is written out before
    /// any response head. Sized for a typical head; it grows for a larger one.
    /// </summary>
    /// <remarks>Its array is rented on first use and given back by <see cref="ReleaseScratch"/>.</remarks>
    public ScratchBuffer HeadScratch => _headScratch ??= new(Client.Buffers, ScratchBytes);

    /// <summary>Where response body framing (chunk heads, a transformed body's chunks) is built on this connection.</summary>
    public ScratchBuffer BodyScratch => _bodyScratch ??= new(Client.Buffers, ScratchBytes);

    // 4 KiB holds a typical head (browsers send 0.5-2 KiB; RFC 9110 §4.1 recommends parsers accept 8,000 octets).
    private const int ScratchBytes = 4096;

    private ScratchBuffer? _headScratch;
    private ScratchBuffer? _bodyScratch;
    private TimeoutScope? _deadline;
    private int _serverConnections;

    /// <summary>
    /// The connection's one timer, re-armed for each wait in turn: the CONNECT's head, the tunnel's sniff and TLS
    /// handshake, then each request head and response head of the HTTP/1.1 exchanges inside. These waits never overlap
    /// (one exchange at a time on HTTP/1.1), so a connection keeps one timer, one cancellation source and one lock
    /// instead of one per kind of wait. Every user arms it and disarms it in a <c>finally</c>. HTTP/2 streams, whose
    /// waits do overlap, keep their own.
    /// </summary>
    public TimeoutScope Deadline => _deadline ??= new TimeoutScope(Runtime.Time);

    /// <summary>
    /// The HTTP/1.1 server connections of this client connection not yet disposed: 1 while it serves, the proxy's own
    /// one (that read the CONNECT) gone by the time the one inside the tunnel serves. Logged with the idle event.
    /// </summary>
    public int ServerConnections => Volatile.Read(ref _serverConnections);

    /// <summary>An HTTP/1.1 server connection starts (+1) or ends (-1) on this client connection.</summary>
    public void CountServerConnection(int delta) => Interlocked.Add(ref _serverConnections, delta);

    /// <summary>Gives the scratch arrays back to the pool: the connection is about to wait for its next request.</summary>
    public void ReleaseScratch()
    {
        _headScratch?.Release();
        _bodyScratch?.Release();
    }

    /// <summary>Takes the connection opened ahead if it goes to <paramref name="key"/>; at most one caller gets it.</summary>
    public EagerConnection? TakeEager(UpstreamKey key)
    {
        var eager = Volatile.Read(ref _eager);
        return eager is not null && eager.Key == key && Interlocked.CompareExchange(ref _eager, null, eager) == eager ? eager : null;
    }

    /// <summary>Records the first complete request head; the limiter no longer counts the connection as sheddable.</summary>
    public void OnFirstHeadReceived()
    {
        FirstHeadReceived = true;
        admission?.FirstRequestHeadReceived();
    }

    /// <summary>Closes an origin connection opened ahead that no request took.</summary>
    public async ValueTask DisposeAsync()
    {
        ReleaseScratch();
        _deadline?.Dispose();
        if (Interlocked.Exchange(ref _eager, null) is { } unused)
        {
            await unused.DisposeAsync();
        }
    }
}
