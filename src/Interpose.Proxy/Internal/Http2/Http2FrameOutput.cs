using System.Buffers;
using Interpose.Core.Http;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The frame output of one HTTP/2 connection, client-facing or origin-facing: every frame of every stream is serialized
/// into one queue under a short lock, and the queue goes to the peer in as few writes as the load allows.
/// </summary>
/// <remarks>
/// <code>
///  caller ─► lock: HPACK-encode / serialize, append to the queue ─► flush lock ─┬─ queue empty: an earlier writer took the frame, done
///                                                                              └─ swap the queue out, one write to the stream, done
/// </code>
/// HPACK makes the order of encoding the order on the wire (the encoder's dynamic table), and a field block must not be
/// split by other frames (RFC 9113 §4.3): both hold because a frame (or a whole field block) is encoded and appended in
/// one turn of the append lock. Writes are coalesced as a group commit: while one caller writes, the frames of the
/// others accumulate and the next holder of the flush lock writes them all in one TLS write (one record, one system
/// call) instead of one per frame; SocketsHttpHandler and Kestrel coalesce the same way (they flush when their queue is
/// empty). A caller returns once its frame was written (or failed), so a peer that stops reading still stops the
/// writers (TCP back-pressure) and the queue holds at most one frame per waiting caller.
/// NOTE: a Channel and a writer task were the alternative; the group commit needs no task per connection and no
/// completion per frame, and a caller still learns that its own frame reached the stream.
/// </remarks>
internal sealed class Http2FrameOutput : IDisposable
{
    /// <summary>Initial size of each queue buffer: one maximum frame with its header, as the writers used before.</summary>
    private const int InitialQueueSize = Http2Limits.MaxFrameSize + FrameHeader.Size;

    /// <summary>Initial size of the field-block buffer: a typical response head encodes to well under 1 KiB.</summary>
    private const int InitialFieldBlockSize = 1024;

    private readonly Transport _transport;
    private readonly CancellationToken _closed;
    private readonly object _appendLock = new();
    private readonly SemaphoreSlim _flushLock = new(1, 1);
    private readonly ArrayBufferWriter<byte> _fieldBlock = new(InitialFieldBlockSize);
    private readonly HpackEncoder _encoder = new();
    private ArrayBufferWriter<byte> _queue = new(InitialQueueSize);
    private ArrayBufferWriter<byte> _writing = new(InitialQueueSize);
    private Exception? _writeFailure;

    /// <param name="transport">The connection; frames go to its <see cref="Transport.Stream"/>.</param>
    /// <param name="closed">Cancelled when the connection ends: the writes themselves run under it alone, since a frame
    /// cut in the middle would break the whole connection.</param>
    public Http2FrameOutput(Transport transport, CancellationToken closed)
    {
        _transport = transport;
        _closed = closed;
    }

    /// <summary>One or more frames serialized by <paramref name="write"/> in one turn of the append lock (control
    /// frames, the preface).</summary>
    /// <exception cref="OperationCanceledException">The connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteFramesAsync<TState>(TState state, Action<IBufferWriter<byte>, TState> write)
    {
        if (_closed.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(_closed);
        }

        lock (_appendLock)
        {
            write(_queue, state);
        }

        return FlushAsync(_closed);
    }

    /// <summary>SETTINGS ACK (RFC 9113 §6.5.3); the peer's SETTINGS_HEADER_TABLE_SIZE applies to the encoder from its
    /// next field block, which can only be queued after this ACK (RFC 7541 §4.2).</summary>
    /// <exception cref="OperationCanceledException">The connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteSettingsAckAsync(uint peerHeaderTableSize) =>
        WriteFramesAsync((this, peerHeaderTableSize), static (o, s) =>
        {
            s.Item1._encoder.SetPeerHeaderTableSize(s.peerHeaderTableSize);
            Http2FrameWriter.WriteSettingsAck(o);
        });

    /// <summary>One field block (HEADERS + CONTINUATIONs), HPACK-encoded and queued in one turn of the append lock.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the block was
    /// queued, or the connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteHeadersAsync(int streamId, List<HttpHeader> fields, bool endStream, int maxFrameSize, CancellationToken cancellationToken) =>
        WriteHeadersAsync(streamId, static id => id, fields, endStream, maxFrameSize, cancellationToken);

    /// <summary>
    /// One field block whose stream id <paramref name="openStream"/> decides under the append lock: a stream opened here
    /// reaches the wire in the order of its id (RFC 9113 §5.1.1: "The identifier of a newly established stream MUST be
    /// numerically greater than all streams that the initiating endpoint has opened").
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the block was
    /// queued, or the connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    /// <remarks>Whatever <paramref name="openStream"/> throws propagates, and nothing is queued.</remarks>
    public ValueTask WriteHeadersAsync<TState>(TState state, Func<TState, int> openStream, List<HttpHeader> fields, bool endStream, int maxFrameSize, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        lock (_appendLock)
        {
            var streamId = openStream(state);
            _fieldBlock.ResetWrittenCount();
            _encoder.EncodeBlock(fields, _fieldBlock);
            Http2FrameWriter.WriteHeaders(_queue, streamId, _fieldBlock.WrittenSpan, endStream, maxFrameSize);
        }

        return FlushAsync(cancellationToken);
    }

    /// <summary>One DATA frame whose send credit the caller already took (<see cref="Http2SendWindows.TakeAsync"/>).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the frame was
    /// queued, or the connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteDataAsync(int streamId, ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        lock (_appendLock)
        {
            if (data.IsSingleSegment)
            {
                Http2FrameWriter.WriteData(_queue, streamId, data.FirstSpan, endStream);
            }
            else
            {
                var rented = ArrayPool<byte>.Shared.Rent((int)data.Length);
                data.CopyTo(rented);
                Http2FrameWriter.WriteData(_queue, streamId, rented.AsSpan(0, (int)data.Length), endStream);
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        return FlushAsync(cancellationToken);
    }

    /// <summary>RST_STREAM (RFC 9113 §6.4).</summary>
    /// <exception cref="OperationCanceledException">The connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteRstStreamAsync(int streamId, Http2ErrorCode code) =>
        WriteFramesAsync((streamId, code), static (o, f) => Http2FrameWriter.WriteRstStream(o, f.streamId, f.code));

    /// <summary>WINDOW_UPDATE (RFC 9113 §6.9); stream 0 is the connection.</summary>
    /// <exception cref="OperationCanceledException">The connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteWindowUpdateAsync(int streamId, int increment) =>
        WriteFramesAsync((streamId, increment), static (o, f) => Http2FrameWriter.WriteWindowUpdate(o, f.streamId, f.increment));

    /// <summary>PING (RFC 9113 §6.7), or its acknowledgement.</summary>
    /// <exception cref="OperationCanceledException">The connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WritePingAsync(ulong data, bool ack) =>
        WriteFramesAsync((data, ack), static (o, f) => Http2FrameWriter.WritePing(o, f.data, f.ack));

    /// <summary>GOAWAY (RFC 9113 §6.8).</summary>
    /// <exception cref="OperationCanceledException">The connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteGoAwayAsync(int lastStreamId, Http2ErrorCode code, byte[] debugData) =>
        WriteFramesAsync((lastStreamId, code, debugData), static (o, f) => Http2FrameWriter.WriteGoAway(o, f.lastStreamId, f.code, f.debugData));

    /// <summary>
    /// Writes whatever is queued, unless an earlier holder of the flush lock already wrote it (the caller's frame
    /// included, since it was queued before the caller waited).
    /// </summary>
    private async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _flushLock.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (!_closed.IsCancellationRequested)
        {
            // The caller's frame is queued already: it must not sit there until some other frame comes.
            _ = FlushQueuedAsync();
            throw;
        }

        try
        {
            ArrayBufferWriter<byte> batch;
            lock (_appendLock)
            {
                if (_writeFailure is { } failure)
                {
                    // Frames queued by others went with the failed batch: their callers must not take it for success.
                    throw new IOException("an earlier write on the HTTP/2 connection failed: " + failure.Message, failure);
                }

                if (_queue.WrittenCount == 0)
                {
                    // An earlier holder of the flush lock wrote the caller's frame with its own.
                    return;
                }

                batch = _queue;
                _queue = _writing;
                _writing = batch;
            }

            try
            {
                await _transport.Stream.WriteAsync(batch.WrittenMemory, _closed);
            }
            catch (Exception ex)
            {
                lock (_appendLock)
                {
                    _writeFailure ??= ex;
                }

                throw;
            }
            finally
            {
                batch.ResetWrittenCount();
            }
        }
        finally
        {
            _flushLock.Release();
        }
    }

    /// <summary>Flushes on behalf of a caller that gave up waiting after its frame was queued.</summary>
    private async Task FlushQueuedAsync()
    {
        try
        {
            await FlushAsync(_closed);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            // The connection failed or closed; its reader or owner reports that.
        }
    }

    public void Dispose() => _flushLock.Dispose();
}
