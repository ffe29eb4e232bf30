using System.Buffers;
using System.Net.Security;
using BenchmarkDotNet.Attributes;
using Interpose.Core.Tls;

namespace Interpose.Benchmarks;

/// <summary>Parsing a real ClientHello as .NET's SslStream sends it (SNI + ALPN h2/http/1.1).</summary>
[MemoryDiagnoser]
public class ClientHelloBenchmarks
{
    private ReadOnlySequence<byte> _hello;

    [GlobalSetup]
    public void Setup()
    {
        var capture = new CaptureStream();
        using var ssl = new SslStream(capture);
        try
        {
            ssl.AuthenticateAsClient(new SslClientAuthenticationOptions
            {
                TargetHost = "www.example.test",
                ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
            });
        }
        catch (IOException)
        {
            // The capture stream ends the handshake after the hello.
        }
        catch (System.Security.Authentication.AuthenticationException)
        {
            // Same, wrapped.
        }

        _hello = new ReadOnlySequence<byte>(capture.Captured ?? throw new InvalidOperationException("No hello captured."));
    }

    [Benchmark]
    public ClientHello? ParseClientHello()
    {
        ClientHelloReader.TryRead(_hello, out ClientHello? hello);
        return hello;
    }

    private sealed class CaptureStream : Stream
    {
        public byte[]? Captured { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => 0;

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Captured ??= buffer.AsSpan(offset, count).ToArray();
    }
}
