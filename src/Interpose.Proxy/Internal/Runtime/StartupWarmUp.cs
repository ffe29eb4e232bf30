using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Interpose.Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Runs the first-contact path once, over loopback, before the first client: a whole intercepted connection (CONNECT,
/// ClientHello, a forged leaf, the client's TLS, an eager origin connection validated against a custom root, two
/// requests, one response with a length and one chunked) through a <see cref="ClientSession"/> of a throwaway runtime,
/// so the server's cache, pool, logs and instruments see nothing of it; and resolve "localhost" once, which loads the
/// system resolver. A fresh process otherwise JIT-compiles all of this on the first client's request: measured
/// 250–400 ms of first-contact TTFB (docs/performance.md), and 34 ms while the warm-up still stopped short of the
/// session. The JIT work is per process, so it runs once per process, not once per server.
/// </summary>
internal static class StartupWarmUp
{
    /// <summary>A name no client can ask for (RFC 6761 §6.4: .invalid never resolves).</summary>
    private const string HostName = "warm-up.interpose.invalid";

    /// <summary>The warm-up runtime's meter: not <see cref="ProxyMetrics.MeterName"/>, so no exporter or listener of the
    /// server's instruments counts warm-up traffic.</summary>
    internal const string MeterName = "Interpose.StartupWarmUp";

    /// <summary>Bound on a message head the warm-up reads itself (its own CONNECT answer and GET): a few hundred bytes.</summary>
    private const int MaxHeadBytes = 4096;

    /// <summary>What the warm-up's client offers in ALPN: h2 first, as browsers and curl do.</summary>
    private static readonly List<SslApplicationProtocol> ClientProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];

    /// <summary>The body of both of the origin's answers.</summary>
    private const string Body = "warm.";

    /// <summary>
    /// The origin's answers to the two requests on one connection: one with a length (RFC 9112 §6.2), one chunked (RFC
    /// 9112 §7.1), so both of the session's body relays are compiled, and the keep-alive path between them.
    /// </summary>
    private static readonly byte[][] OriginResponses =
    [
        Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {Body.Length}\r\n\r\n{Body}")),
        Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n{Body.Length:x}\r\n{Body}\r\n0\r\n\r\n")),
    ];

    /// <summary>
    /// Bound on the whole warm-up: it measured 0.2–0.5 s on 2 shared cores; past this, start-up stops waiting (the
    /// warm-up is an optimisation, never a reason not to serve).
    /// </summary>
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(5);

    private static readonly Lock Gate = new();
    private static Task? _once;

    /// <summary>
    /// Runs the warm-up once per process, with the TLS settings of the first server that asks (the command's OpenSSL
    /// configuration or the library's cipher suites: .NET caches SSL_CTX objects on one path and not on the other);
    /// later calls return the same task. Never throws.
    /// </summary>
    public static Task EnsureAsync(ProxyOptions serverOptions, ILogger logger)
    {
        var useOpenSslCiphers = serverOptions.UseOpenSslCipherConfiguration;
        lock (Gate)
        {
            return _once ??= Task.Run(() => RunAsync(useOpenSslCiphers, logger));
        }
    }

    /// <summary>Waits for the warm-up for at most <see cref="Limit"/>, or until <paramref name="cancellationToken"/>.</summary>
    public static async Task WaitAsync(ProxyOptions serverOptions, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            await EnsureAsync(serverOptions, logger).WaitAsync(Limit, TimeProvider.System, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Still running: it finishes in the background and the first clients share whatever it has compiled.
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The caller stopped waiting; the server is started either way.
        }
    }

    private static async Task RunAsync(bool useOpenSslCiphers, ILogger logger)
    {
        try
        {
            using var cts = new CancellationTokenSource(Limit, TimeProvider.System);
            _ = await RunExchangeAsync(useOpenSslCiphers, cts.Token);

            // The warm-up's garbage is collected here, not in the first client's request: start-up and the warm-up
            // leave the gen0 budget nearly spent, and the first real exchange then paid for an ephemeral collection
            // that compacted the start-up's survivors (about 40% of its CPU under perf; docs/performance.md, "First
            // contact: the start-up's garbage"). Ephemeral generations are asked for, so that an embedder's long-lived
            // heap is not compacted for it; the GC may still widen it to a full collection when gen2's budget is spent,
            // as it does at a fresh process's start (a heap of a few MiB, about a millisecond).
            GC.Collect(1, GCCollectionMode.Forced, blocking: true, compacting: true);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // An optimisation only: whatever failed here fails (and is reported) on a real connection too.
            ProxyLog.WarmUpFailed(logger, ex);
        }
    }

    /// <summary>
    /// Two intercepted HTTPS exchanges, end to end over loopback: a client sends CONNECT, a TLS ClientHello and two GETs to
    /// a <see cref="ClientSession"/> of a runtime of its own (throwaway CA and leaf cache, instruments on
    /// <see cref="MeterName"/>, no logs, no addons), which forges a leaf, opens an eager origin connection validated
    /// against the throwaway CA and relays a response with a length, then a chunked one. Returns what the client received.
    /// </summary>
    internal static async Task<string> RunExchangeAsync(bool useOpenSslCiphers, CancellationToken ct)
    {
        // The system resolver's first lookup loads its configuration and modules (nsswitch, /etc/hosts); "localhost"
        // is answered on the machine (RFC 6761 §6.3, /etc/hosts), so nothing leaves it.
        _ = await Dns.GetHostAddressesAsync("localhost", ct);

        using var authority = CertificateAuthority.CreateEphemeral(CertificateKeyAlgorithm.EcdsaP256, TimeProvider.System);
        using var leaves = new LeafCertificateCache(authority, new LeafCertificateCacheOptions { Capacity = 2 });
        await leaves.WarmUpAsync(ct);

        using var originListener = Listen();
        using var proxyListener = Listen();
        var originPort = ((IPEndPoint)originListener.LocalEndPoint!).Port;
        var options = new ProxyOptions
        {
            ConnectionStrategy = ConnectionStrategy.Eager,
            UseOpenSslCipherConfiguration = useOpenSslCiphers,
            // The warm-up client offers h2 first (the ALPN choice path runs) but writes HTTP/1.1 requests: the session
            // must pick http/1.1, as it does with HTTP/2 off.
            Http2 = false,
            // The name never reaches the system resolver (RFC 6761 §6.4: .invalid never resolves anyway).
            Resolver = static (_, _) => ValueTask.FromResult<IPAddress[]>([IPAddress.Loopback]),
        };
        options.UpstreamTrustedRoots.Add(authority.PublicCertificate);
        var runtime = new ProxyRuntime(options, NullLoggerFactory.Instance, leaves, ct, ct, MeterName);
        try
        {
            var origin = ServeOriginAsync(originListener, leaves, ct);
            var session = AcceptSessionAsync(proxyListener, runtime, ct);
            var response = await ClientAsync((IPEndPoint)proxyListener.LocalEndPoint!, originPort, authority, TlsPolicy.CipherSuitesFor(options), ct);
            await origin;
            await session;
            return response;
        }
        finally
        {
            await runtime.Pool.DisposeAsync();
            runtime.Metrics.Dispose();
            runtime.HookDeadlines.Dispose();
            runtime.HeapTrim.Dispose();
        }
    }

    private static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        return listener;
    }

    private static async Task AcceptSessionAsync(Socket listener, ProxyRuntime runtime, CancellationToken ct)
    {
        using var socket = await listener.AcceptAsync(ct);
        socket.NoDelay = true;
        await new ClientSession(runtime, socket).RunAsync();
    }

    /// <summary>The client: CONNECT, TLS trusting only the throwaway CA, two GETs; returns both responses as received.</summary>
    private static async Task<string> ClientAsync(IPEndPoint proxy, int originPort, CertificateAuthority authority, CipherSuitesPolicy? cipherSuites, CancellationToken ct)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(proxy, ct);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var authorityText = HostName + ":" + originPort.ToString(CultureInfo.InvariantCulture);
        await stream.WriteAsync(Encoding.ASCII.GetBytes("CONNECT " + authorityText + " HTTP/1.1\r\nHost: " + authorityText + "\r\n\r\n"), ct);
        var connectResponse = await ReadHeadAsync(stream, ct);
        if (!connectResponse.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
        {
            throw new IOException("warm-up CONNECT refused: " + connectResponse);
        }

        var validator = new UpstreamCertificateValidator(insecure: false, new X509Certificate2Collection(authority.PublicCertificate));
        await using var tls = new SslStream(stream, leaveInnerStreamOpen: true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = HostName,
            EnabledSslProtocols = TlsPolicy.Protocols,
            CipherSuitesPolicy = cipherSuites,
            // As browsers and curl do: the session's ALPN choice for a client that offers h2 first.
            ApplicationProtocols = ClientProtocols,
            CertificateChainPolicy = validator.CreateChainPolicy(),
            RemoteCertificateValidationCallback = validator.Validate,
        }, ct);
        await tls.WriteAsync(Encoding.ASCII.GetBytes("GET /1 HTTP/1.1\r\nHost: " + authorityText + "\r\n\r\n"), ct);
        var first = await ReadHeadAsync(tls, ct);
        if (!first.StartsWith("HTTP/1.1 200 ", StringComparison.Ordinal))
        {
            // A 502 or the like: the path that was to be warmed failed; the warm-up reports it (WarmUpFailed).
            throw new IOException("warm-up exchange answered " + first[..first.IndexOf('\r', StringComparison.Ordinal)]);
        }

        var body = new byte[Body.Length];
        await tls.ReadExactlyAsync(body, ct);
        await tls.WriteAsync(Encoding.ASCII.GetBytes("GET /2 HTTP/1.1\r\nHost: " + authorityText + "\r\nConnection: close\r\n\r\n"), ct);
        using var rest = new MemoryStream();
        await tls.CopyToAsync(rest, ct);
        return first + Encoding.ASCII.GetString(body) + Encoding.ASCII.GetString(rest.GetBuffer(), 0, (int)rest.Length);
    }

    /// <summary>The origin: TLS with a leaf of the throwaway CA, two requests on one connection, then close.</summary>
    private static async Task ServeOriginAsync(Socket listener, LeafCertificateCache leaves, CancellationToken ct)
    {
        using var socket = await listener.AcceptAsync(ct);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await using var tls = new SslStream(stream, leaveInnerStreamOpen: true);
        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificateContext = await leaves.GetAsync(HostName, ct),
            EnabledSslProtocols = TlsPolicy.Protocols,
            ApplicationProtocols = TlsPolicy.ServerProtocolsFor([]),
        }, ct);
        foreach (var response in OriginResponses)
        {
            _ = await ReadHeadAsync(tls, ct);
            await tls.WriteAsync(response, ct);
        }

        await tls.ShutdownAsync();
    }

    /// <summary>Reads up to the end of a message head (CRLF CRLF), a byte at a time: a few hundred bytes, once.</summary>
    private static async Task<string> ReadHeadAsync(Stream stream, CancellationToken ct)
    {
        var head = new List<byte>(256);
        var one = new byte[1];
        while (head.Count < MaxHeadBytes)
        {
            if (await stream.ReadAsync(one, ct) == 0)
            {
                throw new IOException("warm-up peer closed before a complete head");
            }

            head.Add(one[0]);
            if (head.Count >= 4 && head[^1] == '\n' && head[^2] == '\r' && head[^3] == '\n' && head[^4] == '\r')
            {
                return Encoding.ASCII.GetString([.. head]);
            }
        }

        throw new IOException("warm-up head too long");
    }
}
