using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using BenchmarkDotNet.Attributes;
using Interpose.Certificates;
using Interpose.Proxy;

namespace Interpose.Benchmarks;

/// <summary>
/// One whole keep-alive exchange (1 KiB response) over loopback sockets: client, in-process Interpose, a minimal
/// origin; direct (no proxy) as the baseline. Allocated bytes count every thread (client and origin allocate nothing
/// per exchange), so the difference to <see cref="Direct"/> is what the proxy allocates per exchange.
/// </summary>
[MemoryDiagnoser]
public class ProxyExchangeBenchmarks
{
    /// <summary>Body size of the measured response: 1 KiB, the small-API-response case of the load benchmark.</summary>
    private const int BodySize = 1024;

    private readonly byte[] _readBuffer = new byte[64 * 1024];
    private string _home = string.Empty;
    private MiniOrigin _plainOrigin = null!;
    private MiniOrigin _tlsOrigin = null!;
    private ProxyServer _proxy = null!;
    private CertificateAuthority _authority = null!;
    private Stream _direct = null!;
    private Stream _plain = null!;
    private Stream _https = null!;
    private byte[] _directRequest = [];
    private byte[] _plainRequest = [];
    private byte[] _httpsRequest = [];

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup()
    {
        _direct.Dispose();
        _plain.Dispose();
        _https.Dispose();
        _proxy.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _authority.Dispose();
        _plainOrigin.Dispose();
        _tlsOrigin.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    [Benchmark(Baseline = true)]
    public Task Direct() => ExchangeAsync(_direct, _directRequest);

    [Benchmark]
    public Task PlainForward() => ExchangeAsync(_plain, _plainRequest);

    [Benchmark]
    public Task HttpsIntercepted() => ExchangeAsync(_https, _httpsRequest);

    private async Task SetupAsync()
    {
        _home = Path.Combine(Path.GetTempPath(), "interpose-bench-" + Guid.NewGuid().ToString("N"));
        _plainOrigin = MiniOrigin.Start(null);
        _tlsOrigin = MiniOrigin.Start(SelfSigned());
        _authority = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home });
        var options = new ProxyOptions
        {
            CertificateAuthority = _authority,
            SslInsecure = true,
            Resolver = static (_, _) => ValueTask.FromResult(new[] { IPAddress.Loopback }),
        };
        options.ListenEndpoints.Clear();
        options.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        _proxy = new ProxyServer(options);
        await _proxy.StartAsync();
        var proxyPort = _proxy.Endpoints[0].Port;

        _direct = await ConnectAsync(_plainOrigin.Port);
        _directRequest = Encoding.ASCII.GetBytes($"GET /1k HTTP/1.1\r\nHost: localhost:{_plainOrigin.Port}\r\n\r\n");

        _plain = await ConnectAsync(proxyPort);
        _plainRequest = Encoding.ASCII.GetBytes($"GET http://localhost:{_plainOrigin.Port}/1k HTTP/1.1\r\nHost: localhost:{_plainOrigin.Port}\r\n\r\n");

        var tunnel = await ConnectAsync(proxyPort);
        await tunnel.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT localhost:{_tlsOrigin.Port} HTTP/1.1\r\nHost: localhost:{_tlsOrigin.Port}\r\n\r\n"));
        var read = 0;
        while (read < 4 || !_readBuffer.AsSpan(0, read).EndsWith("\r\n\r\n"u8))
        {
            read += await tunnel.ReadAsync(_readBuffer.AsMemory(read));
        }

        var ssl = new SslStream(tunnel);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            // Validated as a real client would, against the Interpose CA only.
            CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                CustomTrustStore = { _authority.PublicCertificate },
                RevocationMode = X509RevocationMode.NoCheck,
            },
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        });
        _https = ssl;
        _httpsRequest = Encoding.ASCII.GetBytes($"GET /1k HTTP/1.1\r\nHost: localhost:{_tlsOrigin.Port}\r\n\r\n");

        // Warm every path once (JIT, pool, leaf cache).
        await Direct();
        await PlainForward();
        await HttpsIntercepted();
    }

    private static async Task<Stream> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        return new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>Sends the request, reads the response head and its 1 KiB body.</summary>
    private async Task ExchangeAsync(Stream stream, byte[] request)
    {
        await stream.WriteAsync(request);
        var read = 0;
        var headEnd = -1;
        while (true)
        {
            var n = await stream.ReadAsync(_readBuffer.AsMemory(read));
            if (n == 0)
            {
                throw new IOException("closed");
            }

            read += n;
            if (headEnd < 0)
            {
                var index = _readBuffer.AsSpan(0, read).IndexOf("\r\n\r\n"u8);
                if (index >= 0)
                {
                    headEnd = index + 4;
                }
            }

            if (headEnd >= 0 && read - headEnd >= BodySize)
            {
                return;
            }
        }
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>An origin that answers every request head with the same 1 KiB response, keep-alive, no allocation per request.</summary>
    private sealed class MiniOrigin : IDisposable
    {
        private readonly Socket _listener;
        private readonly X509Certificate2? _certificate;
        private readonly byte[] _response;

        private MiniOrigin(X509Certificate2? certificate)
        {
            _certificate = certificate;
            var head = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {BodySize}\r\n\r\n");
            _response = [.. head, .. new byte[BodySize]];
            _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(64);
            Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        }

        public int Port { get; }

        public static MiniOrigin Start(X509Certificate2? certificate)
        {
            var origin = new MiniOrigin(certificate);
            _ = origin.AcceptLoopAsync();
            return origin;
        }

        public void Dispose()
        {
            _listener.Dispose();
            _certificate?.Dispose();
        }

        private async Task AcceptLoopAsync()
        {
            while (true)
            {
                Socket socket;
                try
                {
                    socket = await _listener.AcceptAsync();
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    return;
                }

                socket.NoDelay = true;
                _ = ServeAsync(socket);
            }
        }

        private async Task ServeAsync(Socket socket)
        {
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            try
            {
                if (_certificate is not null)
                {
                    var ssl = new SslStream(stream);
                    await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate });
                    stream = ssl;
                }

                var buffer = new byte[16 * 1024];
                var filled = 0;
                while (true)
                {
                    var n = await stream.ReadAsync(buffer.AsMemory(filled));
                    if (n == 0)
                    {
                        return;
                    }

                    filled += n;
                    int end;
                    while ((end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) >= 0)
                    {
                        await stream.WriteAsync(_response);
                        var rest = filled - (end + 4);
                        buffer.AsSpan(end + 4, rest).CopyTo(buffer);
                        filled = rest;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or AuthenticationException)
            {
                // The peer went away.
            }
            finally
            {
                await stream.DisposeAsync();
            }
        }
    }
}
