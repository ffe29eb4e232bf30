using System.IO.Pipelines;

namespace Interpose.Proxy.Tests.Pipeline;

/// <summary>
/// A connection in memory: two pipes, one per direction, and a stream for each end. No socket, no port, no kernel:
/// what one end writes, the other reads; disposing an end's stream is its close (the peer then reads end of stream).
/// </summary>
public sealed class InMemoryConnection
{
    private readonly Pipe _toServer = new();
    private readonly Pipe _toClient = new();

    public InMemoryConnection()
    {
        Client = new DuplexStream(_toClient.Reader, _toServer.Writer);
        Server = new DuplexStream(_toServer.Reader, _toClient.Writer);
    }

    /// <summary>The end that connected (reads what the server wrote).</summary>
    public Stream Client { get; }

    /// <summary>The end that accepted (reads what the client wrote).</summary>
    public Stream Server { get; }

    private sealed class DuplexStream(PipeReader input, PipeWriter output) : Stream
    {
        private readonly Stream _read = input.AsStream();
        private readonly Stream _write = output.AsStream();

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            _read.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            _read.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            _write.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            _write.WriteAsync(buffer, offset, count, cancellationToken);

        public override Task FlushAsync(CancellationToken cancellationToken) => _write.FlushAsync(cancellationToken);

        public override void Flush() => _write.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override async ValueTask DisposeAsync()
        {
            await output.CompleteAsync();
            await input.CompleteAsync();
            await base.DisposeAsync();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                output.Complete();
                input.Complete();
            }

            base.Dispose(disposing);
        }
    }
}
