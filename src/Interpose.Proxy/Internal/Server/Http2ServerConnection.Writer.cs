using System.Buffers;
using System.Globalization;
using Interpose.Core.Http;
using Interpose.Core.Http2;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The writer of an HTTP/2 server connection: every frame of every stream goes through one
/// <see cref="Http2FrameOutput"/> (HPACK order is wire order, field blocks stay contiguous, writes are coalesced), and
/// DATA waits for credit in <see cref="Http2SendWindows"/> before it is queued.
/// </summary>
/// <remarks>
/// A caller learns that its frame was written (or failed), and a client that stops reading stops the writers (TCP
/// back-pressure) instead of growing a queue: the reader waits on its own ACKs, so control frames cannot pile up
/// past Http2FrameOutput.MaxQueuedBytes (no count of queued control frames is needed, as Go x/net's
/// maxQueuedControlFrames is). Flow-control waits happen before a frame is queued.
/// </remarks>
internal sealed partial class Http2ServerConnection
{
    private readonly Http2FrameOutput _output;

    // Send side (our DATA): the connection window, credited by the client's WINDOW_UPDATE on stream 0, and the streams' waits.
    private readonly Http2SendWindows _sendWindows = new();

    /// <summary>Guards every flow-control window of the connection and its streams (each update is a few instructions).</summary>
    internal object FlowLock => _sendWindows.FlowLock;

    /// <summary>Our SETTINGS (RFC 9113 §6.5.2), then a WINDOW_UPDATE raising the connection window (§6.9.2) when the
    /// configured window is above the 65,535 every connection starts with (an increment of 0 is a PROTOCOL_ERROR).</summary>
    private ValueTask WriteSettingsAsync() =>
        _output.WriteFramesAsync((Stream: _rt.Options.Http2StreamWindowSize, Raise: _rt.Options.Http2ConnectionWindowSize - Http2Settings.DefaultInitialWindowSize), static (o, w) =>
        {
            Http2FrameWriter.WriteSettings(o,
            [
                new Http2Setting(SettingsParameter.EnablePush, 0),
                new Http2Setting(SettingsParameter.MaxConcurrentStreams, Http2Limits.MaxConcurrentStreams),
                new Http2Setting(SettingsParameter.InitialWindowSize, (uint)w.Stream),
                new Http2Setting(SettingsParameter.MaxFrameSize, Http2Limits.MaxFrameSize),
                new Http2Setting(SettingsParameter.MaxHeaderListSize, Http2Limits.MaxHeaderListSize),
            ]);
            if (w.Raise > 0)
            {
                Http2FrameWriter.WriteWindowUpdate(o, 0, w.Raise);
            }
        });

    // RFC 7541 §4.2: the encoder's new table size is signalled at the start of its next field block.
    private ValueTask WriteSettingsAckAsync(uint peerHeaderTableSize) => _output.WriteSettingsAckAsync(peerHeaderTableSize);

    private ValueTask WritePingAckAsync(ulong data) => _output.WritePingAsync(data, ack: true);

    internal ValueTask WriteWindowUpdateAsync(int streamId, int increment) => _output.WriteWindowUpdateAsync(streamId, increment);

    private ValueTask WriteRstStreamAsync(int streamId, Http2ErrorCode code) => _output.WriteRstStreamAsync(streamId, code);

    private ValueTask WriteGoAwayAsync(int lastStreamId, Http2ErrorCode code, byte[] debugData) => _output.WriteGoAwayAsync(lastStreamId, code, debugData);

    /// <summary>One field block (HEADERS + CONTINUATIONs), HPACK-encoded and queued in one turn; with
    /// <paramref name="write"/> false it only waits in the queue for the caller's next frame.</summary>
    internal ValueTask WriteHeadersAsync(int streamId, List<HttpHeader> fields, bool endStream, CancellationToken cancellationToken, bool write = true) =>
        write
            ? _output.WriteHeadersAsync(streamId, fields, endStream, _peerSettings.MaxFrameSize, cancellationToken)
            : _output.QueueHeaders(streamId, fields, endStream, _peerSettings.MaxFrameSize, cancellationToken);

    /// <summary>One DATA frame whose send credit the caller already took (<see cref="TakeSendCreditAsync"/>).</summary>
    internal ValueTask WriteDataAsync(int streamId, ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken) =>
        _output.WriteDataAsync(streamId, data, endStream, cancellationToken);

    /// <summary>Whether both send windows have credit for <paramref name="stream"/> now.</summary>
    internal bool HasSendCredit(Http2ServerStream stream) => _sendWindows.HasCredit(stream.SendWindow);

    /// <summary>Waits for credit in both send windows (RFC 9113 §6.9.1), then takes up to <paramref name="wanted"/> octets.</summary>
    internal async ValueTask<int> TakeSendCreditAsync(Http2ServerStream stream, int wanted, CancellationToken cancellationToken)
    {
        try
        {
            // A zero-window stall (the client keeps the window shut while we have data) is bounded per stream:
            // Http2Limits.SendWindowStallTimeout, then RST_STREAM CANCEL and the exchange ends.
            return await _sendWindows.TakeAsync(stream.SendWindow, wanted, Http2Limits.SendWindowStallTimeout, _rt.Time, cancellationToken);
        }
        catch (TimeoutException)
        {
            ProxyLog.Http2Timeout(_rt.Logger, _flow.Info, stream.Id, "send window credit (zero-window stall)", Http2Limits.SendWindowStallTimeout.TotalSeconds, "RST_STREAM", Http2ErrorCode.Cancel);
            await stream.ResetForStallAsync();
            throw new IOException($"stream {stream.Id}: the client kept its flow-control window shut for {Http2Limits.SendWindowStallTimeout.TotalSeconds:0} s");
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
}
