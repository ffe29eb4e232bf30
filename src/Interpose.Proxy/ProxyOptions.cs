using System.Diagnostics.Metrics;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Interpose.Certificates;
using Interpose.Core.Http;

namespace Interpose.Proxy;

/// <summary>How a <see cref="ProxyServer"/> listens, intercepts and talks to origins. Safe defaults throughout.</summary>
public sealed class ProxyOptions
{
    /// <summary>The default listening port, as mitmproxy's and most proxies'.</summary>
    public const int DefaultPort = 8080;

    /// <summary>Default cap on a body buffered for a hook: 32 MiB, mitmproxy-like, far above typical API payloads.</summary>
    public const long DefaultMaxBufferedBodyBytes = 32L * 1024 * 1024;

    /// <summary>
    /// Default cap on open client connections: 10,000. Envoy's edge guide asks for a global downstream connection limit
    /// but leaves the number to the operator; this is the order of nginx's worker_connections (512) times its workers on
    /// a large box, and well under the usual 65,536 descriptor limit, so the proxy refuses before the OS fails it.
    /// </summary>
    public const int DefaultMaxConnections = 10_000;

    /// <summary>
    /// Default cap on open connections from one client address: 256. Chrome opens at most 32 sockets per proxy, so this
    /// leaves room for several browsers behind one NAT while one address cannot take the whole server.
    /// </summary>
    public const int DefaultMaxConnectionsPerClient = 256;

    /// <summary>Where to listen. Default: 127.0.0.1:8080 only (loopback, so the proxy is not an open proxy).</summary>
    public IList<IPEndPoint> ListenEndpoints { get; } = [new IPEndPoint(IPAddress.Loopback, DefaultPort)];

    /// <summary>
    /// The certificate authority to forge leaves with. When null, the install's CA is loaded from (or created in)
    /// <see cref="ConfigDirectory"/>. The server does not dispose an authority it was given.
    /// </summary>
    public CertificateAuthority? CertificateAuthority { get; set; }

    /// <summary>The config directory holding the CA; null means <see cref="InterposeHome.Resolve"/>.</summary>
    public string? ConfigDirectory { get; set; }

    /// <summary>How many forged leaf certificates to keep (LRU).</summary>
    public int LeafCacheCapacity { get; set; } = 1000;

    /// <summary>Hosts (regular expressions on host, or host:port) whose TLS is relayed untouched, as mitmproxy's ignore_hosts.</summary>
    public IList<Regex> IgnoreHosts { get; } = [];

    /// <summary>
    /// When not empty, only hosts (regular expressions on host, or host:port; the SNI or the CONNECT host) matching one
    /// of these are intercepted, and every other TLS tunnel is relayed untouched: mitmproxy's <c>allow_hosts</c>, the
    /// inverse of <see cref="IgnoreHosts"/>. The two cannot be combined (<see cref="ProxyServer.StartAsync"/> refuses).
    /// </summary>
    public IList<Regex> AllowHosts { get; } = [];

    /// <summary>
    /// Turns off validation of origin certificates (mitmproxy's <c>ssl_insecure</c>). Dangerous: anyone on the path
    /// to the origin can then read and change the traffic. Logged loudly at start.
    /// </summary>
    public bool SslInsecure { get; set; }

    /// <summary>When not empty, origin certificates must chain to one of these instead of the system store.</summary>
    public X509Certificate2Collection UpstreamTrustedRoots { get; } = [];

    /// <summary>Adds a Via field (RFC 9110 §7.6.3) to forwarded messages. Off by default, as mitmproxy.</summary>
    public bool AddVia { get; set; }

    /// <summary>
    /// Speaks HTTP/2 (RFC 9113) to clients that ask for it: ALPN <c>h2</c> on intercepted TLS, and inside plain CONNECT
    /// tunnels the HTTP/2 preface (prior knowledge, h2c) or <c>Upgrade: h2c</c> (RFC 7540 §3.2: answered 101, the
    /// request becomes stream 1; its body, at most <see cref="Core.Http2.H2cUpgrade.MaxBodyBytes"/>, is handed over).
    /// On by default, as mitmproxy's <c>http2</c> option: browsers and gRPC clients get the protocol they asked for, and
    /// their requests offer h2 to TLS origins too (<see cref="UpstreamHttp2"/>). Off: clients negotiate HTTP/1.1, an
    /// <c>Upgrade: h2c</c> is answered in HTTP/1.1, and the HTTP/2 attack classes do not apply. An <c>Upgrade: h2c</c>
    /// in an absolute-form request to the proxy itself is answered in HTTP/1.1 either way.
    /// </summary>
    public bool Http2 { get; set; } = true;

    /// <summary>
    /// Offers HTTP/2 to TLS origins (ALPN <c>h2, http/1.1</c>, RFC 9113 §3.2) for requests whose client speaks HTTP/2,
    /// and uses whichever the origin picks; requests of HTTP/1.1 clients offer http/1.1 only, as they always did, so
    /// each side keeps the protocol it would have had without the proxy. On by default (it changes nothing unless
    /// <see cref="Http2"/> lets clients speak HTTP/2); off: every origin connection is HTTP/1.1.
    /// </summary>
    public bool UpstreamHttp2 { get; set; } = true;

    /// <summary>
    /// Speaks HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) to plain-text <c>http://</c> origins instead of
    /// HTTP/1.1: for h2c-only origins such as gRPC servers on plain Kestrel. Off by default: nothing tells the proxy
    /// that a plain origin speaks h2c, and most do not. Requests that ask for a protocol upgrade stay on HTTP/1.1.
    /// </summary>
    public bool UpstreamHttp2PriorKnowledge { get; set; }

    /// <summary>
    /// The receive window of each HTTP/2 client stream (SETTINGS_INITIAL_WINDOW_SIZE toward clients, RFC 9113 §6.5.2):
    /// at most this many request-body bytes of one stream wait in the proxy for a slow origin. Default
    /// <see cref="Core.Http2.Http2Limits.InitialStreamWindowSize"/> (256 KiB).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is below 65,535, HTTP/2's default window (RFC 9113 §6.9.2):
    /// a smaller one only slows uploads.</exception>
    public int Http2StreamWindowSize
    {
        get;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, Core.Http2.Http2Settings.DefaultInitialWindowSize);
            field = value;
        }
    } = Core.Http2.Http2Limits.InitialStreamWindowSize;

    /// <summary>
    /// The receive window of each HTTP/2 client connection, shared by its streams (raised from 65,535 by a
    /// WINDOW_UPDATE on stream 0, RFC 9113 §6.9.2): the bound on request-body bytes waiting in the proxy per client
    /// connection. Default <see cref="Core.Http2.Http2Limits.InitialConnectionWindowSize"/> (1 MiB).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is below 65,535, the window every connection starts with
    /// (RFC 9113 §6.9.2): it can be raised, never lowered.</exception>
    public int Http2ConnectionWindowSize
    {
        get;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, Core.Http2.Http2Settings.DefaultInitialWindowSize);
            field = value;
        }
    } = Core.Http2.Http2Limits.InitialConnectionWindowSize;

    /// <summary>
    /// The receive window of each HTTP/2 origin stream (SETTINGS_INITIAL_WINDOW_SIZE toward origins): at most this many
    /// response bytes of one stream wait in the proxy for a slow client. Default
    /// <see cref="Core.Http2.Http2Limits.InitialStreamWindowSize"/> (256 KiB, as on the client side).
    /// </summary>
    public int UpstreamHttp2StreamWindowSize { get; set; } = Core.Http2.Http2Limits.InitialStreamWindowSize;

    /// <summary>
    /// The receive window of each HTTP/2 origin connection, shared by its streams: the bound on response bytes waiting
    /// in the proxy per origin connection. Default <see cref="Core.Http2.Http2Limits.InitialConnectionWindowSize"/> (1 MiB).
    /// </summary>
    public int UpstreamHttp2ConnectionWindowSize { get; set; } = Core.Http2.Http2Limits.InitialConnectionWindowSize;

    /// <summary>Users allowed through the proxy (Basic, RFC 7617); none configured means no authentication.</summary>
    public ProxyAuthentication Authentication { get; } = new();

    /// <summary>
    /// Allows listening on a non-loopback address without <see cref="Authentication"/>, i.e. running an open proxy that
    /// anyone who can reach the port may use (to reach the proxy's own network, too). Off by default: start fails instead.
    /// </summary>
    public bool AllowOpenProxy { get; set; }

    /// <summary>When not empty, only clients whose address is in one of these networks are served; others are closed at accept.</summary>
    public IList<IPNetwork> AllowedClients { get; } = [];

    /// <summary>When not empty, CONNECT is only allowed to these ports (others get 403); empty means any port 1-65535.</summary>
    public ISet<int> AllowedConnectPorts { get; } = new HashSet<int>();

    /// <summary>
    /// Open client connections at most; past it new connections are answered 503 with the reason and closed (and
    /// logged); while 64 such answers are already in progress, further ones are closed unanswered.
    /// </summary>
    public int MaxConnections { get; set; } = DefaultMaxConnections;

    /// <summary>Open client connections from one client address at most; past it new ones are answered 503 and closed.</summary>
    public int MaxConnectionsPerClient { get; set; } = DefaultMaxConnectionsPerClient;

    /// <summary>Parsing limits for requests and responses (request line 414, header count and bytes 431).</summary>
    public Http1Limits Limits { get; set; } = Http1Limits.Default;

    /// <summary>The most a hook may ask to buffer of one body; past it the exchange fails with a clear error.</summary>
    public long MaxBufferedBodyBytes { get; set; } = DefaultMaxBufferedBodyBytes;

    /// <summary>Timeouts for every wait the proxy makes.</summary>
    public ProxyTimeouts Timeouts { get; set; } = new();

    /// <summary>Idle origin connections kept for reuse per origin.</summary>
    public int MaxIdleConnectionsPerOrigin { get; set; } = UpstreamPoolDefaults.MaxIdlePerOrigin;

    /// <summary>Idle origin connections kept for reuse in total.</summary>
    public int MaxIdleConnectionsTotal { get; set; } = UpstreamPoolDefaults.MaxIdleTotal;

    /// <summary>
    /// Leave the cipher suites of both TLS sides to the process's OpenSSL configuration instead of setting Interpose's
    /// list in code. Internal: only the <c>interpose</c> command sets it, after pointing OPENSSL_CONF at a file with the
    /// same list, so that .NET can share TLS contexts between connections (it does only without a list in code).
    /// </summary>
    internal bool UseOpenSslCipherConfiguration { get; set; }

    /// <summary>
    /// Before <see cref="ProxyServer.StartAsync"/> returns, run one whole intercepted exchange over loopback (a
    /// throwaway CA, origin and client, at most 5 s, once per process) so that the first real client is served at warm
    /// speed instead of paying for just-in-time compilation (250-400 ms of first-contact time measured). Off by
    /// default: an embedding application decides whether its process runs it; the <c>interpose</c> command turns it on.
    /// </summary>
    public bool WarmUp { get; set; }

    /// <summary>When origin connections of intercepted TLS tunnels are opened; <see cref="ConnectionStrategy.Lazy"/> by default.</summary>
    public ConnectionStrategy ConnectionStrategy { get; set; } = ConnectionStrategy.Lazy;

    /// <summary>The addons, run in this order.</summary>
    public IList<ProxyAddon> Addons { get; } = [];

    /// <summary>
    /// Resolves origin host names; <see cref="Dns.GetHostAddressesAsync(string, CancellationToken)"/> when null.
    /// Tests inject one so that no name leaves the machine.
    /// </summary>
    public Func<string, CancellationToken, ValueTask<IPAddress[]>>? Resolver { get; set; }

    /// <summary>
    /// Creates the server's <c>Interpose</c> meter (connections, exchanges, bytes, errors, TLS, certificates, pool);
    /// when null the meter is created directly. Either way <c>dotnet-counters</c> and OpenTelemetry's
    /// <c>AddMeter("Interpose")</c> see it.
    /// </summary>
    public IMeterFactory? MeterFactory { get; set; }

    /// <summary>The clock for timeouts and timings.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
