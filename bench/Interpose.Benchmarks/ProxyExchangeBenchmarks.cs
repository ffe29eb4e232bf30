using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using BenchmarkDotNet.Attributes;
using Interpose.Certificates;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;
using Interpose.Proxy;

namespace Interpose.Benchmarks;

/// <summary>
/// One whole keep-alive exchange (1 KiB response) over loopback sockets: client, in-process Interpose, a minimal
/// origin; direct (no proxy) as the baseline. Allocated bytes count every thread (client and origin allocate nothing
/// per exchange), so the difference to <see cref="Direct"/> is what the proxy allocates per exchange.
/// <see cref="Http2StreamIntercepted"/> is one HTTP/2 stream of an intercepted h2 connection to the same HTTP/1.1 TLS
/// origin as <see cref="HttpsIntercepted"/> (h2 -> h1): the issue asks that a stream allocate no more than an HTTP/1.1
/// exchange.
/// </summary>
[MemoryDiagnoser]
public class ProxyExchangeBenchmarks
{
    /// <summary>Body size of the measured response: 1 KiB, the small-API-response case of the load benchmark.</summary>
    private const int BodySize = 1024;

    private readonly byte[] _readBuffer = new byte[64 * 1024];
    private readonly byte[] _h2Buffer = new byte[64 * 1024];
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
    private int _proxyPort;
    private Stream _h2 = null!;
    private byte[] _h2Request = [];
    private int _h2NextStream = 1;
    private int _h2Filled;

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup()
    {
        _direct.Dispose();
        _plain.Dispose();
        _https.Dispose();
        _h2.Dispose();
        _proxy.DisposeAsync().AsTask().GetAwaiter().GetResult();
        AfterProxyStoppedAsync().AsTask().GetAwaiter().GetResult();
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

    [Benchmark]
    public Task Http2StreamIntercepted() => Http2ExchangeAsync();

    /// <summary>Adds to the proxy's options before it starts (a derived benchmark's addons).</summary>
    protected virtual void Configure(ProxyOptions options, string home)
    {
    }

    /// <summary>Releases what <see cref="Configure"/> made, once the proxy stopped.</summary>
    protected virtual ValueTask AfterProxyStoppedAsync() => default;

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
        Configure(options, _home);
        _proxy = new ProxyServer(options);
        await _proxy.StartAsync();
        var proxyPort = _proxyPort = _proxy.Endpoints[0].Port;

        _direct = await ConnectAsync(_plainOrigin.Port);
        _directRequest = Encoding.ASCII.GetBytes($"GET /1k HTTP/1.1\r\nHost: localhost:{_plainOrigin.Port}\r\n\r\n");

        _plain = await ConnectAsync(proxyPort);
        _plainRequest = Encoding.ASCII.GetBytes($"GET http://localhost:{_plainOrigin.Port}/1k HTTP/1.1\r\nHost: localhost:{_plainOrigin.Port}\r\n\r\n");

        _https = await InterceptedTlsAsync(SslApplicationProtocol.Http11);
        _httpsRequest = Encoding.ASCII.GetBytes($"GET /1k HTTP/1.1\r\nHost: localhost:{_tlsOrigin.Port}\r\n\r\n");

        // One field block without dynamic-table entries, so the same bytes are valid for every stream.
        var block = new ArrayBufferWriter<byte>();
        new HpackEncoder(maxDynamicTableSize: 0).EncodeBlock(
            [new(":method", "GET"), new(":scheme", "https"), new(":authority", $"localhost:{_tlsOrigin.Port}"), new(":path", "/1k")], block);
        var frames = new ArrayBufferWriter<byte>();
        Http2FrameWriter.WriteHeaders(frames, 1, block.WrittenSpan, endStream: true, Http2Settings.DefaultMaxFrameSize);
        _h2Request = frames.WrittenSpan.ToArray();
        _h2 = await OpenHttp2Async();

        // Warm every path once (JIT, pool, leaf cache).
        await Direct();
        await PlainForward();
        await HttpsIntercepted();
        await Http2StreamIntercepted();
    }

    /// <summary>CONNECT to the TLS origin through the proxy, then TLS with the proxy's forged certificate.</summary>
    private async Task<Stream> InterceptedTlsAsync(SslApplicationProtocol protocol)
    {
        var tunnel = await ConnectAsync(_proxyPort);
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
            ApplicationProtocols = [protocol],
        });
        return ssl;
    }

    /// <summary>An intercepted h2 connection: preface, SETTINGS, the connection window raised, the proxy's SETTINGS acknowledged.</summary>
    private async Task<Stream> OpenHttp2Async()
    {
        var stream = await InterceptedTlsAsync(SslApplicationProtocol.Http2);
        var hello = new ArrayBufferWriter<byte>();
        hello.Write(Http2Preface.ClientPreface);
        Http2FrameWriter.WriteSettings(hello, [new Http2Setting(SettingsParameter.EnablePush, 0)]);
        // The connection window raised once to its maximum (a WINDOW_UPDATE per response would spend the proxy's
        // WINDOW_UPDATE flood budget); every stream's own window is fresh. 2^31 octets outlast the 9,000 streams below.
        Http2FrameWriter.WriteWindowUpdate(hello, 0, int.MaxValue - Http2Settings.DefaultInitialWindowSize);
        await stream.WriteAsync(hello.WrittenMemory);
        _h2Filled = 0;
        _h2NextStream = 1;
        while (true)
        {
            var (type, flags, _, _) = await ReadFrameAsync(stream);
            if (type == FrameType.Settings && (flags & FrameFlags.Ack) == 0)
            {
                var ack = new ArrayBufferWriter<byte>();
                Http2FrameWriter.WriteSettingsAck(ack);
                await stream.WriteAsync(ack.WrittenMemory);
                return stream;
            }
        }
    }

    /// <summary>One stream: HEADERS (GET, END_STREAM), then frames until the response's END_STREAM on that stream.
    /// A connection is replaced before the proxy's stream budget per connection (Http2Limits.MaxStreamsPerConnection)
    /// would end it with GOAWAY: one handshake per 9,000 streams.</summary>
    private async Task Http2ExchangeAsync()
    {
        if (_h2NextStream > 2 * 9_000)
        {
            await _h2.DisposeAsync();
            _h2 = await OpenHttp2Async();
        }

        var id = _h2NextStream;
        _h2NextStream += 2;
        BinaryPrimitives.WriteInt32BigEndian(_h2Request.AsSpan(5), id);
        await _h2.WriteAsync(_h2Request);
        while (true)
        {
            var (type, flags, streamId, _) = await ReadFrameAsync(_h2);
            if (streamId == id && (type is FrameType.Data or FrameType.Headers) && (flags & FrameFlags.EndStream) != 0)
            {
                return;
            }

            if (type == FrameType.RstStream || type == FrameType.GoAway)
            {
                throw new IOException($"{type} from the proxy on stream {streamId}");
            }
        }
    }

    /// <summary>Reads one frame into the HTTP/2 connection's own buffer (frames left over must survive the other benchmarks' reads) and consumes it; the payload is not kept.</summary>
    /// <remarks>Its state machine is pooled: the client must allocate nothing per stream (several frames per stream, one
    /// box each otherwise), as the HTTP/1.1 exchange's client allocates nothing beyond its one async method.</remarks>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(FrameType Type, FrameFlags Flags, int StreamId, int Length)> ReadFrameAsync(Stream stream)
    {
        while (true)
        {
            if (_h2Filled >= FrameHeader.Size)
            {
                var length = (_h2Buffer[0] << 16) | (_h2Buffer[1] << 8) | _h2Buffer[2];
                var total = FrameHeader.Size + length;
                if (_h2Filled >= total)
                {
                    var frame = ((FrameType)_h2Buffer[3], (FrameFlags)_h2Buffer[4], BinaryPrimitives.ReadInt32BigEndian(_h2Buffer.AsSpan(5)) & int.MaxValue, length);
                    _h2Buffer.AsSpan(total, _h2Filled - total).CopyTo(_h2Buffer);
                    _h2Filled -= total;
                    return frame;
                }
            }

            var n = await stream.ReadAsync(_h2Buffer.AsMemory(_h2Filled));
            if (n == 0)
            {
                throw new IOException("closed");
            }

            _h2Filled += n;
        }
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
