using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Interpose.Certificates;
using Interpose.Core.Http;
using Interpose.Core.Tls;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Runs the first-contact path once, over loopback, before the first client: forge a leaf (with a throwaway in-memory
/// CA and cache, so the server's cache and metrics see nothing), accept a TLS client the way a session does (pipe,
/// ClientHello, <see cref="SslStream"/> over <see cref="PipeReaderDuplexStream"/>), connect as the proxy connects to
/// origins (validated against a custom root), and exchange one request and response head; and resolve "localhost"
/// once, which loads the system resolver. A fresh process otherwise
/// JIT-compiles all of this on the first client's request: measured 250–400 ms of first-contact TTFB
/// (docs/performance.md). The JIT work is per process, so it runs once per process, not once per server.
/// </summary>
internal static class StartupWarmUp
{
    /// <summary>A name no client can ask for (RFC 6761 §6.4: .invalid never resolves).</summary>
    private const string HostName = "warm-up.interpose.invalid";

    /// <summary>
    /// Bound on the whole warm-up: it measured 0.2–0.4 s on 2 shared cores; past this, start-up stops waiting (the
    /// warm-up is an optimisation, never a reason not to serve).
    /// </summary>
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(5);

    private static readonly Lock Gate = new();
    private static Task? _once;

    /// <summary>Runs the warm-up once per process; later calls return the same task. Never throws.</summary>
    public static Task EnsureAsync(ILogger logger)
    {
        lock (Gate)
        {
            return _once ??= Task.Run(() => RunAsync(logger));
        }
    }

    /// <summary>Waits for the warm-up for at most <see cref="Limit"/>, or until <paramref name="cancellationToken"/>.</summary>
    public static async Task WaitAsync(ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            await EnsureAsync(logger).WaitAsync(Limit, TimeProvider.System, cancellationToken);
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

    private static async Task RunAsync(ILogger logger)
    {
        try
        {
            using var cts = new CancellationTokenSource(Limit, TimeProvider.System);
            await HandshakeAndExchangeAsync(cts.Token);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // An optimisation only: whatever failed here fails (and is reported) on a real connection too.
            ProxyLog.WarmUpFailed(logger, ex);
        }
    }

    private static async Task HandshakeAndExchangeAsync(CancellationToken ct)
    {
        // The system resolver's first lookup loads its configuration and modules (nsswitch, /etc/hosts); "localhost"
        // is answered on the machine (RFC 6761 §6.3, /etc/hosts), so nothing leaves it.
        _ = await Dns.GetHostAddressesAsync("localhost", ct);

        using var authority = CertificateAuthority.CreateEphemeral(CertificateKeyAlgorithm.EcdsaP256, TimeProvider.System);
        using var leaves = new LeafCertificateCache(authority, new LeafCertificateCacheOptions { Capacity = 1 });
        await leaves.WarmUpAsync(ct);

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var clientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var connect = clientSocket.ConnectAsync(listener.LocalEndPoint!, ct).AsTask();
        var serverSocket = await listener.AcceptAsync(ct);
        await connect;

        await using var server = new Transport(serverSocket, new NetworkStream(serverSocket, ownsSocket: false));
        await using var client = new Transport(clientSocket, new NetworkStream(clientSocket, ownsSocket: false));
        var roots = new X509Certificate2Collection(authority.PublicCertificate);
        var validator = new UpstreamCertificateValidator(insecure: false, roots);
        var clientSsl = new SslStream(client.Stream, leaveInnerStreamOpen: true);
        var clientSide = clientSsl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = HostName,
            EnabledSslProtocols = TlsPolicy.Protocols,
            CipherSuitesPolicy = TlsPolicy.CipherSuites,
            ApplicationProtocols = TlsPolicy.ApplicationProtocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            CertificateChainPolicy = validator.CreateChainPolicy(),
            RemoteCertificateValidationCallback = validator.Validate,
        }, ct);

        // The server side as a session does it: peek the ClientHello in the pipe, forge, then TLS over the same bytes.
        ClientHello? hello;
        while (true)
        {
            var result = await server.Input.ReadAsync(ct);
            var status = ClientHelloReader.TryRead(result.Buffer, out hello);
            server.Input.AdvanceTo(result.Buffer.Start, status == ClientHelloParseStatus.Incomplete ? result.Buffer.End : result.Buffer.Start);
            if (status != ClientHelloParseStatus.Incomplete || result.IsCompleted)
            {
                break;
            }
        }

        var serverSsl = server.WrapInTls();
        await serverSsl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificateContext = await leaves.GetAsync(hello?.ServerName ?? HostName, ct),
            EnabledSslProtocols = TlsPolicy.Protocols,
            CipherSuitesPolicy = TlsPolicy.CipherSuites,
            ApplicationProtocols = TlsPolicy.ServerProtocolsFor(hello?.ApplicationProtocols ?? []),
            ClientCertificateRequired = false,
        }, ct);
        await clientSide;
        client.UseTls(clientSsl);

        // One request head each way through the codec.
        var scratch = new ArrayBufferWriter<byte>(512);
        var headers = new HttpHeaders { { "Host", HostName }, { "Content-Length", "0" } };
        Http1Parser.WriteRequestHead("GET", "/", HttpVersion.Version11, headers, scratch);
        await client.Stream.WriteAsync(scratch.WrittenMemory, ct);
        await ReadHeadAsync(server.Input, request: true, ct);

        scratch.ResetWrittenCount();
        Http1Parser.WriteResponseHead(HttpVersion.Version11, 204, "No Content", new HttpHeaders(), scratch);
        await server.Stream.WriteAsync(scratch.WrittenMemory, ct);
        await ReadHeadAsync(client.Input, request: false, ct);
    }

    private static async Task ReadHeadAsync(System.IO.Pipelines.PipeReader input, bool request, CancellationToken ct)
    {
        var limits = new Http1Limits();
        while (true)
        {
            var result = await input.ReadAsync(ct);
            var buffer = result.Buffer;
            var parsed = request
                ? Http1Parser.TryParseRequestHead(buffer, limits, out _, out var consumed)
                : Http1Parser.TryParseResponseHead(buffer, limits, out _, out consumed);
            if (parsed)
            {
                input.AdvanceTo(consumed);
                return;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                throw new IOException("warm-up peer closed before a complete head");
            }
        }
    }
}
