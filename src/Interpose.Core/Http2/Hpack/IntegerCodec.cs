namespace Interpose.Core.Http2.Hpack;

/// <summary>HPACK integers with an N-bit prefix (RFC 7541 §5.1).</summary>
internal static class IntegerCodec
{
    /// <summary>The most octets an encoded int can take: one prefix octet and five continuation octets.</summary>
    public const int MaxEncodedLength = 6;

    /// <summary>Encodes <paramref name="value"/> with a <paramref name="prefixBits"/>-bit prefix; the bits above the
    /// prefix in the first octet are taken from <paramref name="firstByteFlags"/>.</summary>
    /// <returns>The octets written.</returns>
    public static int Encode(int value, int prefixBits, byte firstByteFlags, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        int max = (1 << prefixBits) - 1;
        if (value < max)
        {
            destination[0] = (byte)(firstByteFlags | value);
            return 1;
        }

        destination[0] = (byte)(firstByteFlags | max);
        int i = 1;
        uint rest = (uint)(value - max);
        while (rest >= 128)
        {
            destination[i++] = (byte)((rest & 0x7F) | 0x80);
            rest >>= 7;
        }

        destination[i++] = (byte)rest;
        return i;
    }
}

/// <summary>A resumable decoder for one HPACK integer (RFC 7541 §5.1): the octets may arrive in separate fragments.</summary>
internal struct IntegerDecoder
{
    private int _value;
    private int _shift;

    /// <summary>Starts with the first octet.</summary>
    /// <returns><see langword="true"/> when the integer fit in the prefix (<paramref name="result"/> is set).</returns>
    public bool BeginTryDecode(byte first, int prefixBits, out int result)
    {
        int max = (1 << prefixBits) - 1;
        int prefix = first & max;
        if (prefix < max)
        {
            result = prefix;
            return true;
        }

        _value = max;
        _shift = 0;
        result = 0;
        return false;
    }

    /// <summary>Feeds one continuation octet.</summary>
    /// <returns><see langword="true"/> when the integer is complete.</returns>
    /// <exception cref="Http2ConnectionException">COMPRESSION_ERROR: the value exceeds 2^31-1 or uses more than five
    /// continuation octets — RFC 7541 §5.1: "Integer encodings that exceed implementation limits -- in value or octet
    /// length -- MUST be treated as decoding errors".</exception>
    public bool TryDecode(byte next, out int result)
    {
        long value = _value + ((long)(next & 0x7F) << _shift);
        _shift += 7;
        if (value > int.MaxValue || (_shift >= 35 && (next & 0x80) != 0))
        {
            throw HpackError.Decoding("HPACK integer exceeds 2^31-1 or 6 octets (RFC 7541 §5.1).");
        }

        _value = (int)value;
        if ((next & 0x80) == 0)
        {
            result = _value;
            return true;
        }

        result = 0;
        return false;
    }
}
