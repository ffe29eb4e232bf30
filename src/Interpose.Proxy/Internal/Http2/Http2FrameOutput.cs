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
///  caller ─► lock: HPACK-encode / serialize, append to the queue ─┬─ a write is in progress: return (wait only past MaxQueuedBytes)
///                                                               └─ none: become the writer ─► loop: swap the queue out, one write
///                                                                  (one TLS record, one system call) until the queue is empty
/// </code>
/// HPACK makes the order of encoding the order on the wire (the encoder's dynamic table), and a field block must not be
/// split by other frames (RFC 9113 §4.3): both hold because a frame (or a whole field block) is encoded and appended in
/// one turn of the lock. Writes are coalesced as Kestrel's Http2FrameWriter and SocketsHttpHandler's Http2Connection
/// coalesce them: whatever the streams queued while the previous write ran goes out in the next one, so a write is a
/// batch of frames instead of one frame. Back-pressure stays: once more than <see cref="MaxQueuedBytes"/> are queued, a
/// caller waits until its batch was written, so a peer that stops reading stops the writers (the reader loop's ACKs
/// included) instead of growing the queue. A write failure fails every later write and every waiter.
/// NOTE: two designs measured worse on bench/load h2-1k-s64: each caller waiting for its own frame's write (a group
/// commit under a semaphore: one continuation per frame), and a write loop task woken through a Channel (one
/// thread-pool hop per batch, which on a loaded machine is latency). The caller that finds no write in progress writes
/// the queue itself, inline.
/// </remarks>
internal sealed class Http2FrameOutput : IDisposable
{
    /// <summary>Queued octets past which a caller waits for the write: 64 KiB, Kestrel's default
    /// MaxResponseBufferSize (its output pipe's pause threshold).</summary>
    private const int MaxQueuedBytes = 64 * 1024;

    /// <summary>Initial size of each queue buffer: one maximum frame with its header.</summary>
    private const int InitialQueueSize = Http2Limits.MaxFrameSize + FrameHeader.Size;

    /// <summary>Initial size of the field-block buffer: a typical response head encodes to well under 1 KiB.</summary>
    private const int InitialFieldBlockSize = 1024;

    private readonly Transport _transport;
    private readonly CancellationToken _closed;
    private readonly object _lock = new();
    private readonly ArrayBufferWriter<byte> _fieldBlock = new(InitialFieldBlockSize);
    private readonly HpackEncoder _encoder = new();
    private ArrayBufferWriter<byte> _queue = new(InitialQueueSize);
    private ArrayBufferWriter<byte> _writing = new(InitialQueueSize);

    // Completed when the frames now queued (resp. the batch being written) reached the stream; created by a waiter.
    private TaskCompletionSource? _queuedWritten;
    private TaskCompletionSource? _inFlightWritten;
    private bool _writeInProgress;
    private Exception? _failure;

    /// <param name="transport">The connection; frames go to its <see cref="Transport.Stream"/>.</param>
    /// <param name="closed">Cancelled when the connection ends: writing stops and what is queued is dropped.</param>
    public Http2FrameOutput(Transport transport, CancellationToken closed)
    {
        _transport = transport;
        _closed = closed;
    }

    /// <summary>One or more frames serialized by <paramref name="write"/> in one turn of the append lock (control
    /// frames, the preface).</summary>
    /// <exception cref="OperationCanceledException">The connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteFramesAsync<TState>(TState state, Action<IBufferWriter<byte>, TState> write) =>
        EnqueueAsync((state, write), static (o, s) => s.write(o._queue, s.state), write: true, _closed);

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

    /// <summary>The peer's SETTINGS_HEADER_TABLE_SIZE known without a SETTINGS frame (an h2c upgrade's HTTP2-Settings,
    /// RFC 7540 §3.2.1, which the 101 acknowledges): applies to the encoder from its next field block.</summary>
    public void SetPeerHeaderTableSize(uint peerHeaderTableSize)
    {
        lock (_lock)
        {
            _encoder.SetPeerHeaderTableSize(peerHeaderTableSize);
        }
    }

    /// <summary>One field block (HEADERS + CONTINUATIONs), HPACK-encoded and queued in one turn of the append lock.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the block was
    /// queued, or the connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteHeadersAsync(int streamId, List<HttpHeader> fields, bool endStream, int maxFrameSize, CancellationToken cancellationToken) =>
        WriteHeadersAsync(streamId, static id => id, fields, endStream, maxFrameSize, cancellationToken);

    /// <summary>
    /// One field block queued but not written: the caller's next frame, which must follow at once, takes it along (one
    /// write for both). Waits only past MaxQueuedBytes, as any frame.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the block was
    /// queued, or the connection closed.</exception>
    /// <exception cref="IOException">An earlier write failed.</exception>
    public ValueTask QueueHeaders(int streamId, List<HttpHeader> fields, bool endStream, int maxFrameSize, CancellationToken cancellationToken) =>
        EnqueueAsync((streamId, fields, endStream, maxFrameSize), static (o, s) => o.AppendFieldBlock(s.streamId, s.fields, s.endStream, s.maxFrameSize), write: false, cancellationToken);

    /// <summary>
    /// One field block whose stream id <paramref name="openStream"/> decides under the append lock: a stream opened here
    /// reaches the wire in the order of its id (RFC 9113 §5.1.1: "The identifier of a newly established stream MUST be
    /// numerically greater than all streams that the initiating endpoint has opened").
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the block was
    /// queued, or the connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    /// <remarks>Whatever <paramref name="openStream"/> throws propagates, and nothing is queued.</remarks>
    public ValueTask WriteHeadersAsync<TState>(TState state, Func<TState, int> openStream, List<HttpHeader> fields, bool endStream, int maxFrameSize, CancellationToken cancellationToken) =>
        EnqueueAsync((state, openStream, fields, endStream, maxFrameSize), static (o, s) => o.AppendFieldBlock(s.openStream(s.state), s.fields, s.endStream, s.maxFrameSize), write: true, cancellationToken);

    /// <summary>Under the lock: HPACK-encodes the block and appends it as HEADERS + CONTINUATIONs (RFC 9113 §4.3).</summary>
    private void AppendFieldBlock(int streamId, List<HttpHeader> fields, bool endStream, int maxFrameSize)
    {
        _fieldBlock.ResetWrittenCount();
        _encoder.EncodeBlock(fields, _fieldBlock);
        Http2FrameWriter.WriteHeaders(_queue, streamId, _fieldBlock.WrittenSpan, endStream, maxFrameSize);
    }

    /// <summary>One DATA frame whose send credit the caller already took (<see cref="Http2SendWindows.TakeAsync"/>).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the frame was
    /// queued, or the connection closed.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    public ValueTask WriteDataAsync(int streamId, ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken) =>
        EnqueueAsync((streamId, data, endStream), static (o, s) => o.AppendData(s.streamId, s.data, s.endStream), write: true, cancellationToken);

    /// <summary>Under the lock: one DATA frame.</summary>
    private void AppendData(int streamId, ReadOnlySequence<byte> data, bool endStream)
    {
        if (data.IsSingleSegment)
        {
            Http2FrameWriter.WriteData(_queue, streamId, data.FirstSpan, endStream);
            return;
        }

        var rented = ArrayPool<byte>.Shared.Rent((int)data.Length);
        data.CopyTo(rented);
        Http2FrameWriter.WriteData(_queue, streamId, rented.AsSpan(0, (int)data.Length), endStream);
        ArrayPool<byte>.Shared.Return(rented);
    }

    /// <summary>
    /// Appends under the lock what <paramref name="append"/> serializes; then, with <paramref name="write"/>, becomes the
    /// writer if no write is in progress. Without it the frames wait for the caller's next frame.
    /// </summary>
    private ValueTask EnqueueAsync<TState>(TState state, Action<Http2FrameOutput, TState> append, bool write, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        Task? wait;
        var writer = false;
        lock (_lock)
        {
            ThrowIfFailed();
            append(this, state);
            wait = write ? Queued(out writer)
                : _queue.WrittenCount > MaxQueuedBytes && _writeInProgress ? (_queuedWritten ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task
                : null;
        }

        return writer ? WriteQueuedAsync() : Await(wait, cancellationToken);
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
    /// <remarks>Returns once the GOAWAY (and everything queued before it) was written: the connection may close next.</remarks>
    public async ValueTask WriteGoAwayAsync(int lastStreamId, Http2ErrorCode code, byte[] debugData)
    {
        await WriteFramesAsync((lastStreamId, code, debugData), static (o, f) => Http2FrameWriter.WriteGoAway(o, f.lastStreamId, f.code, f.debugData));
        await FlushAsync();
    }

    /// <summary>Waits until everything queued so far was written (before a graceful close).</summary>
    /// <exception cref="OperationCanceledException">The connection closed.</exception>
    /// <exception cref="IOException">A write failed.</exception>
    public ValueTask FlushAsync()
    {
        Task? wait;
        lock (_lock)
        {
            ThrowIfFailed();
            wait = _queue.WrittenCount > 0 ? (_queuedWritten ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task
                : _writeInProgress ? (_inFlightWritten ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task
                : null;
        }

        return Await(wait, _closed);
    }

    /// <summary>Under the lock, after a frame was queued: the caller becomes the writer when no write is in progress;
    /// otherwise it returns what the caller must wait for (the queue's write) when the queue is past
    /// <see cref="MaxQueuedBytes"/>.</summary>
    private Task? Queued(out bool writer)
    {
        writer = !_writeInProgress;
        if (writer)
        {
            _writeInProgress = true;
            return null;
        }

        return _queue.WrittenCount <= MaxQueuedBytes
            ? null
            : (_queuedWritten ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
    }

    private static ValueTask Await(Task? wait, CancellationToken cancellationToken) =>
        wait is null ? default : new ValueTask(wait.WaitAsync(cancellationToken));

    /// <summary>Under the lock: after a failed write nothing more is queued.</summary>
    private void ThrowIfFailed()
    {
        if (_failure is { } failure)
        {
            throw failure is OperationCanceledException
                ? new OperationCanceledException("the HTTP/2 connection closed", failure, _closed)
                : new IOException("a write on the HTTP/2 connection failed: " + failure.Message, failure);
        }
    }

    /// <summary>The writer of the moment: writes the queue, batch after batch, until it is empty.</summary>
    private async ValueTask WriteQueuedAsync()
    {
        try
        {
            while (true)
            {
                ArrayBufferWriter<byte> batch;
                lock (_lock)
                {
                    if (_queue.WrittenCount == 0)
                    {
                        _writeInProgress = false;
                        return;
                    }

                    batch = _queue;
                    _queue = _writing;
                    _writing = batch;
                    _inFlightWritten = _queuedWritten;
                    _queuedWritten = null;
                }

                await _transport.Stream.WriteAsync(batch.WrittenMemory, _closed);
                batch.ResetWrittenCount();
                TaskCompletionSource? written;
                lock (_lock)
                {
                    written = _inFlightWritten;
                    _inFlightWritten = null;
                }

                written?.TrySetResult();
            }
        }
        catch (Exception ex)
        {
            // IOException, SocketException, ObjectDisposedException (the stream closed), OperationCanceledException (the
            // connection closed): every waiter and every later write learns it; no write is in progress any more.
            Fail(ex);
            throw;
        }
    }

    private void Fail(Exception failure)
    {
        TaskCompletionSource? queued, inFlight;
        lock (_lock)
        {
            _failure ??= failure;
            queued = _queuedWritten;
            inFlight = _inFlightWritten;
            _queuedWritten = _inFlightWritten = null;
        }

        queued?.TrySetException(failure);
        inFlight?.TrySetException(failure);
    }

    public void Dispose() => Fail(new ObjectDisposedException(nameof(Http2FrameOutput)));
}
