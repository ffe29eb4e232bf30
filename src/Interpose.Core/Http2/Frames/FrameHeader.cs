using System.Buffers.Binary;

namespace Interpose.Core.Http2;

/// <summary>The fixed 9-octet HTTP/2 frame header (RFC 9113 §4.1): 24-bit length, 8-bit type, 8-bit flags, one
/// reserved bit and a 31-bit stream identifier.</summary>
public readonly record struct FrameHeader
{
    /// <summary>The size of a frame header on the wire.</summary>
    public const int Size = 9;

    /// <summary>The largest length the 24-bit field can carry (RFC 9113 §4.1).</summary>
    public const int MaxLength = (1 << 24) - 1;

    /// <summary>Creates a header.</summary>
    /// <param name="length">The payload length, 0..2^24-1.</param>
    /// <param name="type">The frame type.</param>
    /// <param name="flags">The flags.</param>
    /// <param name="streamId">The stream identifier, 0..2^31-1.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value does not fit its field.</exception>
    public FrameHeader(int length, FrameType type, FrameFlags flags, int streamId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxLength);
        ArgumentOutOfRangeException.ThrowIfNegative(streamId);
        Length = length;
        Type = type;
        Flags = flags;
        StreamId = streamId;
    }

    /// <summary>The payload length (not counting these 9 octets).</summary>
    public int Length { get; }

    /// <summary>The frame type; may be a value that <see cref="FrameType"/> does not name (an extension frame).</summary>
    public FrameType Type { get; }

    /// <summary>The raw flags.</summary>
    public FrameFlags Flags { get; }

    /// <summary>The stream identifier (the reserved bit is masked off, RFC 9113 §4.1: "MUST be ignored when receiving").</summary>
    public int StreamId { get; }

    /// <summary>Whether every bit of <paramref name="flag"/> is set.</summary>
    /// <param name="flag">The flag(s) to test.</param>
    /// <returns><see langword="true"/> when set.</returns>
    public bool HasFlag(FrameFlags flag) => (Flags & flag) == flag;

    /// <summary>Reads a header from the first 9 octets of <paramref name="source"/>.</summary>
    /// <param name="source">At least <see cref="Size"/> octets.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ArgumentException"><paramref name="source"/> is shorter than 9 octets.</exception>
    public static FrameHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
        {
            throw new ArgumentException("A frame header is 9 octets.", nameof(source));
        }

        int length = (source[0] << 16) | (source[1] << 8) | source[2];
        int streamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(source[5..]) & 0x7FFF_FFFFu);
        return new FrameHeader(length, (FrameType)source[3], (FrameFlags)source[4], streamId);
    }

    /// <summary>Writes the header into the first 9 octets of <paramref name="destination"/> (reserved bit 0).</summary>
    /// <param name="destination">At least <see cref="Size"/> octets.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 9 octets.</exception>
    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException("A frame header is 9 octets.", nameof(destination));
        }

        destination[0] = (byte)(Length >> 16);
        destination[1] = (byte)(Length >> 8);
        destination[2] = (byte)Length;
        destination[3] = (byte)Type;
        destination[4] = (byte)Flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], (uint)StreamId);
    }
}
