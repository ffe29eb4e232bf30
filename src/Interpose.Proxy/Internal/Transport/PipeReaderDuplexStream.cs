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
internal sealed class PipeReaderDuplexStream(PipeReader reader, Stream inner) : NetworkReadStream(inner)
{
    // The pipe, until a read finds it empty: then it is completed and dropped. Reads are sequential (SslStream's).
    private PipeReader? _reader = reader;

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

        return Inner.ReadAsync(buffer, cancellationToken);
    }

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
