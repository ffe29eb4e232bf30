using System.Buffers;
using System.IO.Pipelines;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The stream TLS runs over on the client's side of an intercepted tunnel: its reads return first the bytes already in
/// a pipe (the ClientHello the tunnel looked at before it decided to intercept), then, once the pipe holds none, come
/// straight from the network stream; its writes go to the network stream.
/// </summary>
/// <remarks>
/// Reading the network stream directly once the pipe is drained saves a copy of every byte the client sends, and an
/// idle intercepted connection then waits with one pending read (SslStream's zero-byte read on the socket) instead of
/// also a pipe read under it, with its state machine, segment and cancellation registration (issue 19).
/// </remarks>
internal sealed class PipeReaderDuplexStream(PipeReader reader, Stream inner) : Stream
{
    // The pipe, until a read finds it empty: then it is completed and dropped. Reads are sequential (SslStream's).
    private PipeReader? _reader = reader;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>Whether reads still come from the pipe (tests).</summary>
    internal bool ReadsFromPipe => Volatile.Read(ref _reader) is not null;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _reader) is { } pipe)
        {
            // Everything the pipe holds was read into it before TLS started, so nothing needs to be waited for.
            if (pipe.TryRead(out var result))
            {
                return new ValueTask<int>(CopyFrom(pipe, result.Buffer, buffer));
            }

            if (Interlocked.CompareExchange(ref _reader, null, pipe) == pipe)
            {
                pipe.Complete();
            }
        }

        return inner.ReadAsync(buffer, cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    // SslStream only uses the async paths here; the synchronous ones are not part of the proxy's design.
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Completes the pipe if reads have not left it yet; the network stream stays open (its transport owns it).</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Interlocked.Exchange(ref _reader, null)?.Complete();
        }

        base.Dispose(disposing);
    }

    private static int CopyFrom(PipeReader pipe, ReadOnlySequence<byte> available, Memory<byte> buffer)
    {
        // An empty buffer here is the end of the stream (the client closed), or a zero-byte read that data is waiting for.
        var count = (int)Math.Min(available.Length, buffer.Length);
        available.Slice(0, count).CopyTo(buffer.Span);
        pipe.AdvanceTo(available.GetPosition(count));
        return count;
    }
}
