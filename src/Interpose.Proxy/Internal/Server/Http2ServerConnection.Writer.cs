using System.Buffers;
using System.Globalization;
using Interpose.Core.Http;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The writer of an HTTP/2 server connection: every frame of every stream goes through <see cref="_writeLock"/>, one
/// frame (or one field block) per turn, serialized into one buffer and written to the client's stream.
/// </summary>
/// <remarks>
/// NOTE: a SemaphoreSlim-guarded stream rather than a Channel and a writer task. HPACK makes the order of encoding the
/// order on the wire (the encoder's dynamic table), and a field block must not be split by other frames (RFC 9113
/// §4.3): both hold when encoding and writing happen under one lock. A caller also learns that its frame was written
/// (or failed) without a completion per item, and a client that stops reading stops the writers (TCP back-pressure)
/// instead of growing a queue: the reader waits on its own ACKs, so control frames cannot pile up
/// (Http2Limits.MaxQueuedControlFrames is never approached). Flow-control waits happen before taking the lock.
/// </remarks>
internal sealed partial class Http2ServerConnection
{
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ArrayBufferWriter<byte> _out = new(Http2Limits.MaxFrameSize + FrameHeader.Size);
    private readonly ArrayBufferWriter<byte> _fieldBlock = new(1024);
    private readonly HpackEncoder _encoder = new();

    // Send side (our DATA): debited as streams send, credited by the client's WINDOW_UPDATE on stream 0.
    private readonly FlowWindow _sendWindow;

    /// <summary>Guards every flow-control window of the connection and its streams (each update is a few instructions).</summary>
    internal object FlowLock { get; } = new();

    /// <summary>Our SETTINGS (RFC 9113 §6.5.2), then a WINDOW_UPDATE raising the connection window (§6.9.2).</summary>
    private async ValueTask WriteSettingsAsync()
    {
        await _writeLock.WaitAsync(_closed.Token);
        try
        {
            _out.ResetWrittenCount();
            Http2FrameWriter.WriteSettings(_out,
            [
                new Http2Setting(SettingsParameter.EnablePush, 0),
                new Http2Setting(SettingsParameter.MaxConcurrentStreams, Http2Limits.MaxConcurrentStreams),
                new Http2Setting(SettingsParameter.InitialWindowSize, Http2Limits.InitialStreamWindowSize),
                new Http2Setting(SettingsParameter.MaxFrameSize, Http2Limits.MaxFrameSize),
                new Http2Setting(SettingsParameter.MaxHeaderListSize, Http2Limits.MaxHeaderListSize),
            ]);
            Http2FrameWriter.WriteWindowUpdate(_out, 0, Http2Limits.InitialConnectionWindowSize - Http2Settings.DefaultInitialWindowSize);
            await FlushOutAsync();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask WriteSettingsAckAsync(uint peerHeaderTableSize)
    {
        await _writeLock.WaitAsync(_closed.Token);
        try
        {
            // RFC 7541 §4.2: the encoder's new table size is signalled at the start of its next field block.
            _encoder.SetPeerHeaderTableSize(peerHeaderTableSize);
            _out.ResetWrittenCount();
            Http2FrameWriter.WriteSettingsAck(_out);
            await FlushOutAsync();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private ValueTask WritePingAckAsync(ulong data) =>
        WriteControlFrameAsync(data, static (o, d) => Http2FrameWriter.WritePing(o, d, ack: true));

    internal ValueTask WriteWindowUpdateAsync(int streamId, int increment) =>
        WriteControlFrameAsync((streamId, increment), static (o, f) => Http2FrameWriter.WriteWindowUpdate(o, f.streamId, f.increment));

    private ValueTask WriteRstStreamAsync(int streamId, Http2ErrorCode code) =>
        WriteControlFrameAsync((streamId, code), static (o, f) => Http2FrameWriter.WriteRstStream(o, f.streamId, f.code));

    private ValueTask WriteGoAwayAsync(int lastStreamId, Http2ErrorCode code, byte[] debugData) =>
        WriteControlFrameAsync((lastStreamId, code, debugData), static (o, f) => Http2FrameWriter.WriteGoAway(o, f.lastStreamId, f.code, f.debugData));

    /// <summary>One control frame, serialized by <paramref name="write"/> and written in one turn of the lock.</summary>
    private async ValueTask WriteControlFrameAsync<TState>(TState state, Action<ArrayBufferWriter<byte>, TState> write)
    {
        await _writeLock.WaitAsync(_closed.Token);
        try
        {
            _out.ResetWrittenCount();
            write(_out, state);
            await FlushOutAsync();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>One field block (HEADERS + CONTINUATIONs), HPACK-encoded and written in one turn of the lock.</summary>
    internal async ValueTask WriteHeadersAsync(int streamId, List<HttpHeader> fields, bool endStream, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            _fieldBlock.ResetWrittenCount();
            _encoder.EncodeBlock(fields, _fieldBlock);
            _out.ResetWrittenCount();
            Http2FrameWriter.WriteHeaders(_out, streamId, _fieldBlock.WrittenSpan, endStream, _peerSettings.MaxFrameSize);
            await FlushOutAsync();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>One DATA frame whose send credit the caller already took (<see cref="TakeSendCreditAsync"/>).</summary>
    internal async ValueTask WriteDataAsync(int streamId, ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            _out.ResetWrittenCount();
            if (data.IsSingleSegment)
            {
                Http2FrameWriter.WriteData(_out, streamId, data.FirstSpan, endStream);
            }
            else
            {
                var rented = ArrayPool<byte>.Shared.Rent((int)data.Length);
                data.CopyTo(rented);
                Http2FrameWriter.WriteData(_out, streamId, rented.AsSpan(0, (int)data.Length), endStream);
                ArrayPool<byte>.Shared.Return(rented);
            }

            await FlushOutAsync();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>
    /// Waits until both the connection's and the stream's send windows have credit (RFC 9113 §6.9.1: "A sender MUST NOT
    /// send a flow-controlled frame with a length that exceeds the space available in either of the flow-control
    /// windows"), then takes up to <paramref name="wanted"/> octets of it.
    /// </summary>
    internal async ValueTask<int> TakeSendCreditAsync(Http2ServerStream stream, int wanted, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (FlowLock)
            {
                var granted = (int)Math.Min(Math.Min(stream.SendWindow.Size, _sendWindow.Size), wanted);
                if (granted > 0)
                {
                    stream.SendWindow.Take(granted);
                    _sendWindow.Take(granted);
                    return granted;
                }

                wait = stream.ArmSendWait();
            }

            try
            {
                // A zero-window stall (the client keeps the window shut while we have data) is bounded per stream:
                // Http2Limits.SendWindowStallTimeout, then RST_STREAM CANCEL and the exchange ends.
                await wait.WaitAsync(Http2Limits.SendWindowStallTimeout, _rt.Time, cancellationToken);
            }
            catch (TimeoutException)
            {
                ProxyLog.Http2Timeout(_rt.Logger, _flow.Info, stream.Id, "send window credit (zero-window stall)", Http2Limits.SendWindowStallTimeout.TotalSeconds, "RST_STREAM", Http2ErrorCode.Cancel);
                await stream.ResetForStallAsync();
                throw new IOException($"stream {stream.Id}: the client kept its flow-control window shut for {Http2Limits.SendWindowStallTimeout.TotalSeconds:0} s");
            }
        }
    }

    /// <summary>The connection window grew (or every stream's did): every stream waiting to send looks again.</summary>
    private void WakeAllSenders()
    {
        foreach (var stream in _streams.Values)
        {
            stream.WakeSender();
        }
    }

    /// <summary>A bodiless response written by the connection itself (431, 501), before any exchange exists; the reason
    /// goes to the log. No DATA, so no send credit is needed whatever the windows.</summary>
    private async ValueTask WriteFixedResponseAsync(int streamId, int status, string message)
    {
        ProxyLog.BadRequest(_rt.Logger, _flow.Info, message, status);
        List<HttpHeader> fields = [new(":status", status.ToString(CultureInfo.InvariantCulture))];
        await WriteHeadersAsync(streamId, fields, endStream: true, _closed.Token);
    }

    /// <summary>Writes <see cref="_out"/> to the client. Under the lock; the connection's token only, since a frame
    /// cut in the middle would break the whole connection.</summary>
    private ValueTask FlushOutAsync() => _client.Stream.WriteAsync(_out.WrittenMemory, _closed.Token);
}
