using System.Buffers;
using System.Buffers.Binary;

namespace Interpose.Core.Http2;

/// <summary>One parsed, validated HTTP/2 frame, as returned by <see cref="Http2FrameReader.TryReadFrame"/>. The
/// <see cref="Payload"/> is a slice of the reader's input: it is valid only until the caller advances its pipe.</summary>
/// <remarks>
/// What <see cref="Payload"/> holds by type: DATA — the data without padding; HEADERS, PUSH_PROMISE, CONTINUATION —
/// the field block fragment without padding, priority fields or promised stream id; SETTINGS — the raw 6-octet
/// entries (use <see cref="SettingsCount"/> and <see cref="GetSetting"/>); PING — the 8 opaque octets; GOAWAY — the
/// additional debug data; anything else — the whole payload. Flow control counts the whole frame length
/// (<see cref="FrameHeader.Length"/>, padding included, RFC 9113 §6.1), not the payload.
/// </remarks>
public readonly struct Http2Frame
{
    private readonly int _argument;

    internal Http2Frame(FrameHeader header, ReadOnlySequence<byte> payload, int padLength = 0, int argument = 0,
        Http2ErrorCode errorCode = Http2ErrorCode.NoError, int streamDependency = 0, bool exclusive = false, int weight = 0)
    {
        Header = header;
        Payload = payload;
        PadLength = padLength;
        _argument = argument;
        ErrorCode = errorCode;
        StreamDependency = streamDependency;
        IsExclusive = exclusive;
        Weight = weight;
    }

    /// <summary>The frame header.</summary>
    public FrameHeader Header { get; }

    /// <summary>The frame type (shortcut for <c>Header.Type</c>).</summary>
    public FrameType Type => Header.Type;

    /// <summary>The frame flags (shortcut for <c>Header.Flags</c>).</summary>
    public FrameFlags Flags => Header.Flags;

    /// <summary>The stream identifier (shortcut for <c>Header.StreamId</c>).</summary>
    public int StreamId => Header.StreamId;

    /// <summary>The type-specific content; see the remarks.</summary>
    public ReadOnlySequence<byte> Payload { get; }

    /// <summary>The Pad Length field of a PADDED DATA, HEADERS or PUSH_PROMISE frame (0 otherwise).</summary>
    public int PadLength { get; }

    /// <summary>END_STREAM is set on a DATA or HEADERS frame.</summary>
    public bool EndStream => Type is FrameType.Data or FrameType.Headers && Header.HasFlag(FrameFlags.EndStream);

    /// <summary>END_HEADERS is set on a HEADERS, PUSH_PROMISE or CONTINUATION frame.</summary>
    public bool EndHeaders => Type is FrameType.Headers or FrameType.PushPromise or FrameType.Continuation && Header.HasFlag(FrameFlags.EndHeaders);

    /// <summary>ACK is set on a SETTINGS or PING frame.</summary>
    public bool IsAck => Type is FrameType.Settings or FrameType.Ping && Header.HasFlag(FrameFlags.Ack);

    /// <summary>The error code of RST_STREAM or GOAWAY (possibly a value the enum does not name).</summary>
    public Http2ErrorCode ErrorCode { get; }

    /// <summary>GOAWAY: the last peer-initiated stream the sender might have processed (RFC 9113 §6.8).</summary>
    public int LastStreamId => Type == FrameType.GoAway ? _argument : 0;

    /// <summary>PUSH_PROMISE: the promised stream identifier (RFC 9113 §6.6).</summary>
    public int PromisedStreamId => Type == FrameType.PushPromise ? _argument : 0;

    /// <summary>WINDOW_UPDATE: the increment, 1..2^31-1 (0 is rejected by the reader, RFC 9113 §6.9).</summary>
    public int WindowSizeIncrement => Type == FrameType.WindowUpdate ? _argument : 0;

    /// <summary>PING: the 8 opaque octets as a big-endian integer, to echo in the ACK.</summary>
    public ulong PingData
    {
        get
        {
            if (Type != FrameType.Ping)
            {
                return 0;
            }

            Span<byte> data = stackalloc byte[8];
            Payload.CopyTo(data);
            return BinaryPrimitives.ReadUInt64BigEndian(data);
        }
    }

    /// <summary>PRIORITY, or HEADERS with the PRIORITY flag: the stream this one depends on (deprecated, §5.3.2).</summary>
    public int StreamDependency { get; }

    /// <summary>A HEADERS frame with the PRIORITY flag that names its own stream as its dependency: a stream error of
    /// type PROTOCOL_ERROR (RFC 9113 §5.3.1) that the caller raises only after decoding the field block, so that its
    /// HPACK table stays in step with the peer's (§4.3). (A PRIORITY frame that does so is rejected by the reader.)</summary>
    public bool DependsOnItself => Type == FrameType.Headers && (Flags & FrameFlags.Priority) != 0 && StreamDependency == StreamId;

    /// <summary>PRIORITY, or HEADERS with the PRIORITY flag: the exclusive bit.</summary>
    public bool IsExclusive { get; }

    /// <summary>PRIORITY, or HEADERS with the PRIORITY flag: the weight, 1..256 (0 when absent).</summary>
    public int Weight { get; }

    /// <summary>SETTINGS: the number of entries (0 for an ACK).</summary>
    public int SettingsCount => Type == FrameType.Settings ? (int)(Payload.Length / 6) : 0;

    /// <summary>SETTINGS: the entry at <paramref name="index"/>, in the order sent (later ones win, RFC 9113 §6.5.3).</summary>
    /// <param name="index">0..<see cref="SettingsCount"/>-1.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is out of range.</exception>
    public Http2Setting GetSetting(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, SettingsCount);
        Span<byte> entry = stackalloc byte[6];
        Payload.Slice(index * 6, 6).CopyTo(entry);
        return new Http2Setting((SettingsParameter)BinaryPrimitives.ReadUInt16BigEndian(entry), BinaryPrimitives.ReadUInt32BigEndian(entry[2..]));
    }
}
