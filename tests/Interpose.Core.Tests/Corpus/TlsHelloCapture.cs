using System.Net.Security;

namespace Interpose.Core.Tests.Corpus;

/// <summary>Captures the real ClientHello that .NET's SslStream sends, without any network: the first write is
/// recorded and then the "connection" fails.</summary>
public static class TlsHelloCapture
{
    private static readonly Lazy<Task<byte[]>> Default = new(() => CaptureAsync("example.test", [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11]));

    public static Task<byte[]> DefaultHelloAsync() => Default.Value;

    public static async Task<byte[]> CaptureAsync(string targetHost, List<SslApplicationProtocol> alpn)
    {
        var capture = new CaptureStream();
        using var ssl = new SslStream(capture, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = targetHost,
            ApplicationProtocols = alpn,
            RemoteCertificateValidationCallback = (_, _, _, _) => false,
        };
        try
        {
            await ssl.AuthenticateAsClientAsync(options);
        }
        catch (IOException)
        {
            // Expected: the capture stream ends the conversation after the hello.
        }
        catch (System.Security.Authentication.AuthenticationException)
        {
            // Also acceptable: some platforms wrap the failure.
        }

        return capture.Captured ?? throw new InvalidOperationException("SslStream wrote nothing.");
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

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(0);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Record(buffer.AsSpan(offset, count));

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Record(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Record(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        private void Record(ReadOnlySpan<byte> data)
        {
            Captured ??= data.ToArray();
        }
    }
}
