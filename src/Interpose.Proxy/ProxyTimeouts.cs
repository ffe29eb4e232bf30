namespace Interpose.Proxy;

/// <summary>Every wait the proxy makes, with defaults taken from servers that have been run at scale.</summary>
public sealed class ProxyTimeouts
{
    /// <summary>TCP connect to an origin: 10 s, as curl's and browsers' order of magnitude for a dead host.</summary>
    public static readonly TimeSpan DefaultConnect = TimeSpan.FromSeconds(10);

    /// <summary>A TLS handshake, either side: 10 s, Kestrel's HandshakeTimeout.</summary>
    public static readonly TimeSpan DefaultTlsHandshake = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A whole request head: 30 s, Kestrel's RequestHeadersTimeout (slowloris). For a connection's first request it
    /// counts from accept, as nginx's client_header_timeout does (a connection that never sends a byte is closed after
    /// it); for a later one, from the request's first byte.
    /// </summary>
    public static readonly TimeSpan DefaultRequestHead = TimeSpan.FromSeconds(30);

    /// <summary>
    /// An idle client connection between requests (after its first one): 130 s, Kestrel's KeepAliveTimeout. Inside a
    /// CONNECT tunnel the CONNECT was the first request, so the tunnel's first request waits this long.
    /// </summary>
    public static readonly TimeSpan DefaultIdleKeepAlive = TimeSpan.FromSeconds(130);

    /// <summary>The origin's response head after the request was sent: 60 s, nginx's proxy_read_timeout.</summary>
    public static readonly TimeSpan DefaultResponseHead = TimeSpan.FromSeconds(60);

    /// <summary>An idle pooled origin connection: 60 s, SocketsHttpHandler's PooledConnectionIdleTimeout.</summary>
    public static readonly TimeSpan DefaultUpstreamIdle = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long a CONNECT tunnel waits for the client's first byte before connecting to the server, in case it is a
    /// server-speaks-first protocol (SMTP, FTP, many databases): 1 s, short enough for a banner. A client that speaks
    /// after it (before the server does) is still sniffed and intercepted; the connection opened meanwhile is closed.
    /// </summary>
    public static readonly TimeSpan DefaultServerFirstWait = TimeSpan.FromSeconds(1);

    /// <summary>
    /// One addon hook call (a library addon's or a <c>-s</c> script's): 90 s. mitmproxy has no such bound. The model is
    /// the response-head timeout (60 s, nginx's proxy_read_timeout): a hook slower than that is, to the client, a stuck
    /// origin. The 30 s above it leave the addons that wait on purpose inside a hook, bounded by that same 60 s (the
    /// interactive intercept's pause), to end with their own, clearer answer first.
    /// </summary>
    public static readonly TimeSpan DefaultAddonHook = TimeSpan.FromSeconds(90);

    /// <summary>Graceful shutdown: exchanges in flight get 10 s to finish before connections are closed.</summary>
    public static readonly TimeSpan DefaultShutdown = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The slowest a client may send a request body: 240 bytes/s after a 5 s grace period, Kestrel's
    /// MinRequestBodyDataRate (a body trickled a byte at a time would otherwise hold a client and an origin
    /// connection indefinitely).
    /// </summary>
    public static readonly MinDataRate DefaultMinRequestBodyDataRate = new(240, TimeSpan.FromSeconds(5));

    /// <summary>
    /// The slowest a client may read a response: 240 bytes/s after a 5 s grace period, Kestrel's MinResponseDataRate.
    /// </summary>
    public static readonly MinDataRate DefaultMinResponseDataRate = new(240, TimeSpan.FromSeconds(5));

    /// <summary>TCP connect to an origin.</summary>
    public TimeSpan Connect { get; set; } = DefaultConnect;

    /// <summary>A TLS handshake with a client or an origin.</summary>
    public TimeSpan TlsHandshake { get; set; } = DefaultTlsHandshake;

    /// <summary>Receiving a whole request head: from accept for a connection's first request, else from its first byte.</summary>
    public TimeSpan RequestHead { get; set; } = DefaultRequestHead;

    /// <summary>An idle client connection between requests, once it completed a first request head.</summary>
    public TimeSpan IdleKeepAlive { get; set; } = DefaultIdleKeepAlive;

    /// <summary>Waiting for the origin's response head.</summary>
    public TimeSpan ResponseHead { get; set; } = DefaultResponseHead;

    /// <summary>An idle pooled origin connection.</summary>
    public TimeSpan UpstreamIdle { get; set; } = DefaultUpstreamIdle;

    /// <summary>Waiting for a tunnelled client's first byte before connecting to see whether the server speaks first.</summary>
    public TimeSpan ServerFirstWait { get; set; } = DefaultServerFirstWait;

    /// <summary>
    /// One call of an addon's hook. At the deadline the hook's token is cancelled and the proxy stops waiting for it:
    /// a request or response hook fails its exchange (502 naming the addon and the hook), a notification hook
    /// (connected, disconnected, done, error) is logged and skipped. <see cref="TimeSpan.Zero"/> or
    /// <see cref="Timeout.InfiniteTimeSpan"/> turns the bound off. A hook that blocks its thread before returning its
    /// task cannot be bounded this way: hooks must be asynchronous.
    /// </summary>
    public TimeSpan AddonHook { get; set; } = DefaultAddonHook;

    /// <summary>Letting exchanges in flight finish on shutdown.</summary>
    public TimeSpan Shutdown { get; set; } = DefaultShutdown;

    /// <summary>
    /// The slowest a client may send a request body (streamed to the origin, buffered for a hook, or drained), counting
    /// only the time the proxy waits for the client's next bytes; null turns the check off. Below it, the exchange
    /// ends: 408 when no response byte was sent yet, else a close; the origin connection is closed, not pooled. When
    /// the request carries <c>Expect: 100-continue</c>, the clock starts at the body's first byte, as the client may
    /// rightly wait for the origin's 100 (RFC 9110 §10.1.1); until then the response-head timeout bounds the wait.
    /// </summary>
    public MinDataRate? MinRequestBodyDataRate { get; set; } = DefaultMinRequestBodyDataRate;

    /// <summary>
    /// The slowest a client may read a response (head and body), counting only the time the proxy waits for its writes
    /// to the client to complete (an origin slow to send is not the client's fault); null turns the check off. Below
    /// it, the client connection and the origin connection are closed. No rate is imposed on origins: a slow response
    /// body may be the point (server-sent events, long polling); only the response head has a timeout.
    /// </summary>
    public MinDataRate? MinResponseDataRate { get; set; } = DefaultMinResponseDataRate;
}
