using System.Buffers;
using System.Buffers.Binary;

namespace Interpose.Core.Http2;

/// <summary>Writes HTTP/2 frames into an <see cref="IBufferWriter{T}"/>. Pure: no I/O, no state. The connection
/// decides what may be sent (flow control, stream state); these methods only produce correct bytes. Padding and
/// priority are never written (RFC 9113 §5.3.2 deprecates the priority scheme; padding is optional).</summary>
public static class Http2FrameWriter
{
    /// <summary>Writes one DATA frame (RFC 9113 §6.1).</summary>
    /// <param name="output">Where the frame goes.</param>
    /// <param name="streamId">The stream, 1..2^31-1.</param>
    /// <param name="data">The data; at most the peer's SETTINGS_MAX_FRAME_SIZE (the caller splits by flow-control
    /// credit and frame size).</param>
    /// <param name="endStream">Sets END_STREAM: our last frame on the stream.</param>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="streamId"/> is not positive or the data is longer than a frame can carry.</exception>
    public static void WriteData(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> data, bool endStream)
    {
        RequireStream(streamId);
        WriteFrame(output, FrameType.Data, endStream ? FrameFlags.EndStream : FrameFlags.None, streamId, data);
    }

    /// <summary>Writes a field block as one HEADERS frame followed by as many CONTINUATION frames as
    /// <paramref name="maxFrameSize"/> requires (RFC 9113 §4.3: a field block is one HEADERS and zero or more
    /// CONTINUATION frames with nothing in between; END_HEADERS on the last one). Write it in one go under the
    /// connection's write lock so no other frame lands in the middle.</summary>
    /// <param name="output">Where the frames go.</param>
    /// <param name="streamId">The stream, 1..2^31-1.</param>
    /// <param name="fieldBlock">The HPACK-encoded block from <see cref="Hpack.HpackEncoder"/>.</param>
    /// <param name="endStream">Sets END_STREAM on the HEADERS frame (RFC 9113 §6.2: CONTINUATION has no END_STREAM;
    /// the flag on HEADERS covers the whole block).</param>
    /// <param name="maxFrameSize">The peer's SETTINGS_MAX_FRAME_SIZE.</param>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="streamId"/> is not positive or <paramref name="maxFrameSize"/> is out of range.</exception>
    public static void WriteHeaders(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> fieldBlock, bool endStream, int maxFrameSize)
    {
        RequireStream(streamId);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFrameSize, Http2Settings.DefaultMaxFrameSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxFrameSize, Http2Settings.MaxAllowedFrameSize);
        int first = Math.Min(fieldBlock.Length, maxFrameSize);
        FrameFlags flags = (endStream ? FrameFlags.EndStream : FrameFlags.None) | (first == fieldBlock.Length ? FrameFlags.EndHeaders : FrameFlags.None);
        WriteFrame(output, FrameType.Headers, flags, streamId, fieldBlock[..first]);
        ReadOnlySpan<byte> rest = fieldBlock[first..];
        while (!rest.IsEmpty)
        {
            int n = Math.Min(rest.Length, maxFrameSize);
            WriteFrame(output, FrameType.Continuation, n == rest.Length ? FrameFlags.EndHeaders : FrameFlags.None, streamId, rest[..n]);
            rest = rest[n..];
        }
    }

    /// <summary>Writes a SETTINGS frame with <paramref name="settings"/> (RFC 9113 §6.5).</summary>
    /// <param name="output">Where the frame goes.</param>
    /// <param name="settings">The entries, in order; at most 2,796,202 (one frame).</param>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> is null.</exception>
    /// <exception cref="Http2ConnectionException">A value breaks RFC 9113 §6.5.2 (a bug in the caller).</exception>
    public static void WriteSettings(IBufferWriter<byte> output, ReadOnlySpan<Http2Setting> settings)
    {
        ArgumentNullException.ThrowIfNull(output);
        int length = settings.Length * 6;
        Span<byte> span = Begin(output, FrameType.Settings, FrameFlags.None, 0, length);
        for (int i = 0; i < settings.Length; i++)
        {
            Http2Settings.Validate(settings[i].Parameter, settings[i].Value);
            BinaryPrimitives.WriteUInt16BigEndian(span[(i * 6)..], (ushort)settings[i].Parameter);
            BinaryPrimitives.WriteUInt32BigEndian(span[((i * 6) + 2)..], settings[i].Value);
        }

        output.Advance(FrameHeader.Size + length);
    }

    /// <summary>Writes an empty SETTINGS frame with ACK (RFC 9113 §6.5.3).</summary>
    /// <param name="output">Where the frame goes.</param>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> is null.</exception>
    public static void WriteSettingsAck(IBufferWriter<byte> output) => WriteFrame(output, FrameType.Settings, FrameFlags.Ack, 0, []);

    /// <summary>Writes a PING frame (RFC 9113 §6.7).</summary>
    /// <param name="output">Where the frame goes.</param>
    /// <param name="opaqueData">The 8 octets, big-endian; an ACK echoes the received <see cref="Http2Frame.PingData"/>.</param>
    /// <param name="ack">Sets ACK (a reply).</param>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> is null.</exception>
    public static void WritePing(IBufferWriter<byte> output, ulong opaqueData, bool ack)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(payload, opaqueData);
        WriteFrame(output, FrameType.Ping, ack ? FrameFlags.Ack : FrameFlags.None, 0, payload);
    }

    /// <summary>Writes a WINDOW_UPDATE frame (RFC 9113 §6.9).</summary>
    /// <param name="output">Where the frame goes.</param>
    /// <param name="streamId">The stream, or 0 for the connection window.</param>
    /// <param name="increment">The credit, 1..2^31-1.</param>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="increment"/> is not positive or <paramref name="streamId"/> is negative.</exception>
    public static void WriteWindowUpdate(IBufferWriter<byte> output, int streamId, int increment)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(streamId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(increment);
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)increment);
        WriteFrame(output, FrameType.WindowUpdate, FrameFlags.None, streamId, payload);
    }

    /// <summary>Writes a RST_STREAM frame (RFC 9113 §6.4).</summary>
    /// <param name="output">Where the frame goes.</param>
    /// <param name="streamId">The stream, 1..2^31-1.</param>
    /// <param name="errorCode">Why.</param>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="streamId"/> is not positive.</exception>
    public static void WriteRstStream(IBufferWriter<byte> output, int streamId, Http2ErrorCode errorCode)
    {
        RequireStream(streamId);
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)errorCode);
        WriteFrame(output, FrameType.RstStream, FrameFlags.None, streamId, payload);
    }

    /// <summary>Writes a GOAWAY frame (RFC 9113 §6.8).</summary>
    /// <param name="output">Where the frame goes.</param>
    /// <param name="lastStreamId">The highest peer-initiated stream that was or might be processed; 2^31-1 for the
    /// first of the two GOAWAYs of a graceful shutdown.</param>
    /// <param name="errorCode">Why.</param>
    /// <param name="debugData">Opaque diagnostic octets (may be empty; never secrets, they may be logged).</param>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="lastStreamId"/> is negative.</exception>
    public static void WriteGoAway(IBufferWriter<byte> output, int lastStreamId, Http2ErrorCode errorCode, ReadOnlySpan<byte> debugData)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(lastStreamId);
        int length = 8 + debugData.Length;
        Span<byte> span = Begin(output, FrameType.GoAway, FrameFlags.None, 0, length);
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)lastStreamId);
        BinaryPrimitives.WriteUInt32BigEndian(span[4..], (uint)errorCode);
        debugData.CopyTo(span[8..]);
        output.Advance(FrameHeader.Size + length);
    }

    private static void WriteFrame(IBufferWriter<byte> output, FrameType type, FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(output);
        Span<byte> span = Begin(output, type, flags, streamId, payload.Length);
        payload.CopyTo(span);
        output.Advance(FrameHeader.Size + payload.Length);
    }

    // Writes the header and returns the payload area; the caller fills it and advances by 9 + length.
    private static Span<byte> Begin(IBufferWriter<byte> output, FrameType type, FrameFlags flags, int streamId, int length)
    {
        var header = new FrameHeader(length, type, flags, streamId);
        Span<byte> span = output.GetSpan(FrameHeader.Size + length);
        header.WriteTo(span);
        return span.Slice(FrameHeader.Size, length);
    }

    private static void RequireStream(int streamId) => ArgumentOutOfRangeException.ThrowIfNegativeOrZero(streamId);
}
