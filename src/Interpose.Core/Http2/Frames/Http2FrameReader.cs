using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Interpose.Core.Http2;

/// <summary>Reads HTTP/2 frames from a byte sequence as a pure function: no I/O, no state. The per-frame rules of
/// RFC 9113 §4 and §6 are checked here; the rules that need connection state (stream states, header block
/// sequencing, SETTINGS values already in force) belong to <see cref="Http2StreamStateMachine"/>,
/// <see cref="Http2HeaderBlockTracker"/> and <see cref="Http2Settings"/>.</summary>
public static class Http2FrameReader
{
    /// <summary>Reads one frame if the whole of it is in <paramref name="buffer"/>.</summary>
    /// <param name="buffer">The unread input. On success it is advanced past the frame; on "need more" it is untouched
    /// (the caller then marks everything examined and reads more, Kestrel's <c>AdvanceTo(consumed, examined)</c>).</param>
    /// <param name="maxFrameSize">The SETTINGS_MAX_FRAME_SIZE this endpoint advertised (16,384 until changed).</param>
    /// <param name="frame">The frame; its payload is a slice of the original <paramref name="buffer"/>.</param>
    /// <returns><see langword="true"/> when a frame was read; <see langword="false"/> when more data is needed.</returns>
    /// <exception cref="Http2ConnectionException">The frame breaks a rule whose violation is a connection error.</exception>
    /// <exception cref="Http2StreamException">The frame breaks a rule whose violation is a stream error (the frame
    /// has been consumed: the caller resets the stream and reads on). Not for a HEADERS frame that depends on itself:
    /// that one is returned (see <see cref="Http2Frame.DependsOnItself"/>), its field block still to be decoded.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxFrameSize"/> is outside 16,384..16,777,215.</exception>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameSize, out Http2Frame frame)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFrameSize, Http2Settings.DefaultMaxFrameSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxFrameSize, Http2Settings.MaxAllowedFrameSize);
        frame = default;
        if (buffer.Length < FrameHeader.Size)
        {
            return false;
        }

        Span<byte> headerBytes = stackalloc byte[FrameHeader.Size];
        buffer.Slice(0, FrameHeader.Size).CopyTo(headerBytes);
        FrameHeader header = FrameHeader.Read(headerBytes);

        // RFC 9113 §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size defined
        // in SETTINGS_MAX_FRAME_SIZE". Checked before buffering the payload, so an oversized length cannot make the
        // caller buffer up to 16 MiB. A connection error for every type: the frame cannot be skipped without reading it.
        if (header.Length > maxFrameSize)
        {
            throw Connection(Http2ErrorCode.FrameSizeError, $"{header.Type} frame of {header.Length} octets exceeds SETTINGS_MAX_FRAME_SIZE {maxFrameSize} (RFC 9113 §4.2).");
        }

        if (buffer.Length < FrameHeader.Size + header.Length)
        {
            return false;
        }

        ReadOnlySequence<byte> payload = buffer.Slice(FrameHeader.Size, header.Length);
        buffer = buffer.Slice(FrameHeader.Size + header.Length);
        frame = Parse(header, payload);
        return true;
    }

    private static Http2Frame Parse(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        switch (header.Type)
        {
            case FrameType.Data:
                {
                    // RFC 9113 §6.1: "If a DATA frame is received whose Stream Identifier field is 0x00, the recipient
                    // MUST respond with a connection error of type PROTOCOL_ERROR."
                    RequireStream(header);
                    int pad = ReadPadding(header, ref payload, 0);
                    return new Http2Frame(header, payload, padLength: pad);
                }

            case FrameType.Headers:
                {
                    // RFC 9113 §6.2: HEADERS on stream 0 → connection error PROTOCOL_ERROR.
                    RequireStream(header);
                    bool priority = header.HasFlag(FrameFlags.Priority);
                    int pad = ReadPadding(header, ref payload, priority ? 5 : 0);
                    if (!priority)
                    {
                        return new Http2Frame(header, payload, padLength: pad);
                    }

                    // RFC 9113 §5.3.1: a HEADERS that depends on itself is a stream error, but its field block must still
                    // go through the caller's HPACK decoder (§4.3: "the state of the ... decompression context" is
                    // shared by every block), so the frame is returned and the caller resets the stream after decoding
                    // (Http2Frame.DependsOnItself).
                    (int dependency, bool exclusive, int weight) = ReadPriority(header, payload, allowSelf: true);
                    return new Http2Frame(header, payload.Slice(5), padLength: pad, streamDependency: dependency, exclusive: exclusive, weight: weight);
                }

            case FrameType.Priority:
                {
                    // RFC 9113 §6.3: stream 0 → connection PROTOCOL_ERROR; "A PRIORITY frame with a length other than 5
                    // octets MUST be treated as a stream error of type FRAME_SIZE_ERROR."
                    RequireStream(header);
                    if (header.Length != 5)
                    {
                        throw new Http2StreamException(header.StreamId, Http2ErrorCode.FrameSizeError, $"PRIORITY frame of {header.Length} octets; it must be 5 (RFC 9113 §6.3).");
                    }

                    (int dependency, bool exclusive, int weight) = ReadPriority(header, payload);
                    return new Http2Frame(header, payload, streamDependency: dependency, exclusive: exclusive, weight: weight);
                }

            case FrameType.RstStream:
                {
                    // RFC 9113 §6.4: stream 0 → connection PROTOCOL_ERROR; length other than 4 → connection FRAME_SIZE_ERROR.
                    RequireStream(header);
                    RequireLength(header, 4);
                    return new Http2Frame(header, payload, errorCode: (Http2ErrorCode)ReadUInt32(payload));
                }

            case FrameType.Settings:
                {
                    // RFC 9113 §6.5: a stream id other than 0 → connection PROTOCOL_ERROR; ACK with a payload, or a length
                    // that is not a multiple of 6 → connection FRAME_SIZE_ERROR.
                    RequireConnection(header);
                    if (header.HasFlag(FrameFlags.Ack) && header.Length != 0)
                    {
                        throw Connection(Http2ErrorCode.FrameSizeError, "SETTINGS ACK with a payload (RFC 9113 §6.5).");
                    }

                    if (header.Length % 6 != 0)
                    {
                        throw Connection(Http2ErrorCode.FrameSizeError, $"SETTINGS frame of {header.Length} octets is not a multiple of 6 (RFC 9113 §6.5).");
                    }

                    var frame = new Http2Frame(header, payload);
                    for (int i = 0; i < frame.SettingsCount; i++)
                    {
                        Http2Setting setting = frame.GetSetting(i);
                        Http2Settings.Validate(setting.Parameter, setting.Value);
                    }

                    return frame;
                }

            case FrameType.PushPromise:
                {
                    // RFC 9113 §6.6: stream 0 → connection PROTOCOL_ERROR. Whether push is acceptable at all
                    // (SETTINGS_ENABLE_PUSH, a server never receives it) is the connection's decision.
                    RequireStream(header);
                    int pad = ReadPadding(header, ref payload, 4);
                    int promised = (int)(ReadUInt32(payload) & 0x7FFF_FFFFu);
                    return new Http2Frame(header, payload.Slice(4), padLength: pad, argument: promised);
                }

            case FrameType.Ping:
                // RFC 9113 §6.7: stream id other than 0 → connection PROTOCOL_ERROR; length other than 8 → connection
                // FRAME_SIZE_ERROR.
                RequireConnection(header);
                RequireLength(header, 8);
                return new Http2Frame(header, payload);

            case FrameType.GoAway:
                {
                    // RFC 9113 §6.8: stream id other than 0 → connection PROTOCOL_ERROR; at least 8 octets (§4.2: "too
                    // small to contain mandatory frame data" → FRAME_SIZE_ERROR).
                    RequireConnection(header);
                    if (header.Length < 8)
                    {
                        throw Connection(Http2ErrorCode.FrameSizeError, $"GOAWAY frame of {header.Length} octets; at least 8 needed (RFC 9113 §6.8).");
                    }

                    int lastStreamId = (int)(ReadUInt32(payload) & 0x7FFF_FFFFu);
                    var code = (Http2ErrorCode)ReadUInt32(payload.Slice(4));
                    return new Http2Frame(header, payload.Slice(8), argument: lastStreamId, errorCode: code);
                }

            case FrameType.WindowUpdate:
                {
                    // RFC 9113 §6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a
                    // connection error of type FRAME_SIZE_ERROR."
                    RequireLength(header, 4);
                    int increment = (int)(ReadUInt32(payload) & 0x7FFF_FFFFu);

                    // RFC 9113 §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control
                    // window increment of 0 as a stream error of type PROTOCOL_ERROR; errors on the connection
                    // flow-control window MUST be treated as a connection error".
                    if (increment == 0)
                    {
                        const string Message = "WINDOW_UPDATE with an increment of 0 (RFC 9113 §6.9).";
                        throw header.StreamId == 0
                            ? Connection(Http2ErrorCode.ProtocolError, Message)
                            : new Http2StreamException(header.StreamId, Http2ErrorCode.ProtocolError, Message);
                    }

                    return new Http2Frame(header, payload, argument: increment);
                }

            case FrameType.Continuation:
                // RFC 9113 §6.10: stream 0 → connection PROTOCOL_ERROR. Sequencing: Http2HeaderBlockTracker.
                RequireStream(header);
                return new Http2Frame(header, payload);

            default:
                // RFC 9113 §4.1 / §5.5: unknown frame types are ignored (the caller still checks that no header block is open).
                return new Http2Frame(header, payload);
        }
    }

    private static int ReadPadding(FrameHeader header, ref ReadOnlySequence<byte> payload, int fixedFields)
    {
        if (!header.HasFlag(FrameFlags.Padded))
        {
            if (header.Length < fixedFields)
            {
                throw Connection(Http2ErrorCode.FrameSizeError, $"{header.Type} frame of {header.Length} octets is too short for its fields (RFC 9113 §4.2).");
            }

            return 0;
        }

        if (header.Length < 1 + fixedFields)
        {
            throw Connection(Http2ErrorCode.FrameSizeError, $"{header.Type} frame of {header.Length} octets is too short for its fields (RFC 9113 §4.2).");
        }

        int pad = payload.FirstSpan[0];

        // RFC 9113 §6.1 (and §6.2, §6.6): "If the length of the padding is the length of the frame payload or greater,
        // the recipient MUST treat this as a connection error of type PROTOCOL_ERROR." The fixed fields count too.
        if (pad >= header.Length - fixedFields)
        {
            throw Connection(Http2ErrorCode.ProtocolError, $"{header.Type} frame padding of {pad} octets fills its {header.Length}-octet payload (RFC 9113 §6.1).");
        }

        payload = payload.Slice(1, header.Length - 1 - pad);
        return pad;
    }

    private static (int Dependency, bool Exclusive, int Weight) ReadPriority(FrameHeader header, ReadOnlySequence<byte> payload, bool allowSelf = false)
    {
        uint word = ReadUInt32(payload);
        int dependency = (int)(word & 0x7FFF_FFFFu);
        Span<byte> weight = stackalloc byte[1];
        payload.Slice(4, 1).CopyTo(weight);

        // RFC 9113 §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a stream error of type
        // PROTOCOL_ERROR."
        if (dependency == header.StreamId && !allowSelf)
        {
            throw new Http2StreamException(header.StreamId, Http2ErrorCode.ProtocolError, $"Stream {header.StreamId} depends on itself (RFC 9113 §5.3.1).");
        }

        return (dependency, (word & 0x8000_0000u) != 0, weight[0] + 1);
    }

    private static uint ReadUInt32(ReadOnlySequence<byte> payload)
    {
        Span<byte> bytes = stackalloc byte[4];
        payload.Slice(0, 4).CopyTo(bytes);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    private static void RequireStream(FrameHeader header)
    {
        if (header.StreamId == 0)
        {
            throw Connection(Http2ErrorCode.ProtocolError, $"{header.Type} frame on stream 0 (RFC 9113 §6).");
        }
    }

    private static void RequireConnection(FrameHeader header)
    {
        if (header.StreamId != 0)
        {
            throw Connection(Http2ErrorCode.ProtocolError, $"{header.Type} frame on stream {header.StreamId}; it belongs to stream 0 (RFC 9113 §6).");
        }
    }

    private static void RequireLength(FrameHeader header, int length)
    {
        if (header.Length != length)
        {
            throw Connection(Http2ErrorCode.FrameSizeError, $"{header.Type} frame of {header.Length} octets; it must be {length} (RFC 9113 §6).");
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Http2ConnectionException Connection(Http2ErrorCode code, string message) => new(code, message);
}
