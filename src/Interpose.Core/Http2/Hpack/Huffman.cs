namespace Interpose.Core.Http2.Hpack;

/// <summary>The HPACK Huffman code (RFC 7541 §5.2, Appendix B): 257 symbols (the 256 octets and EOS), 5 to 30 bits.
/// The code is canonical — codes of one length are consecutive and ordered by symbol — so decoding walks the bit
/// lengths with a first-code and count per length instead of a tree.</summary>
internal static class Huffman
{
    /// <summary>The end-of-string symbol (RFC 7541 Appendix B).</summary>
    public const int Eos = 256;

    // RFC 7541 Appendix B, "code as hex aligned to LSB", for symbols 0..256.
    private static readonly uint[] Codes =
    [
        0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7, // 0..7
        0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec, // 8..15
        0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3, // 16..23
        0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb, // 24..31
        0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa, // 32..39
        0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18, // 40..47
        0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, // 48..55
        0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc, // 56..63
        0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, // 64..71
        0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, // 72..79
        0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, // 80..87
        0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22, // 88..95
        0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26, // 96..103
        0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7, // 104..111
        0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78, // 112..119
        0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc, // 120..127
        0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9, // 128..135
        0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf, // 136..143
        0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3, // 144..151
        0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef, // 152..159
        0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde, // 160..167
        0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec, // 168..175
        0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef, // 176..183
        0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1, // 184..191
        0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec, // 192..199
        0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed, // 200..207
        0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2, // 208..215
        0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5, // 216..223
        0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3, // 224..231
        0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4, // 232..239
        0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea, // 240..247
        0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee, // 248..255
        0x3fffffff, // 256..256
    ];

    // RFC 7541 Appendix B, "len in bits", for symbols 0..256.
    private static readonly byte[] Lengths =
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0..15
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16..31
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32..47
        5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48..63
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64..79
        7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80..95
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96..111
        6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112..127
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..143
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..159
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..175
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..191
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..207
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..223
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..239
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..255
        30, // 256..256
    ];

    private const int MaxCodeLength = 30;

    // Canonical decoding tables, built once from the RFC data: for each length, the first code, how many codes have
    // that length, and where their symbols start in SymbolsByCode.
    private static readonly uint[] FirstCode = new uint[MaxCodeLength + 1];
    private static readonly int[] CountByLength = new int[MaxCodeLength + 1];
    private static readonly int[] FirstSymbolIndex = new int[MaxCodeLength + 1];
    private static readonly short[] SymbolsByCode = BuildDecodingTables();

    /// <summary>The code of <paramref name="symbol"/> (tests check it against the RFC).</summary>
    internal static (uint Code, int Length) GetCode(int symbol) => (Codes[symbol], Lengths[symbol]);

    /// <summary>The encoded length in octets of <paramref name="source"/>, padding included.</summary>
    public static int GetEncodedLength(ReadOnlySpan<byte> source)
    {
        long bits = 0;
        foreach (byte b in source)
        {
            bits += Lengths[b];
        }

        return (int)((bits + 7) / 8);
    }

    /// <summary>Encodes <paramref name="source"/> into <paramref name="destination"/>, padding the last octet with the
    /// most significant bits of EOS (all ones, RFC 7541 §5.2).</summary>
    /// <returns>The octets written (<see cref="GetEncodedLength"/>).</returns>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is too small.</exception>
    public static int Encode(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        int needed = GetEncodedLength(source);
        if (destination.Length < needed)
        {
            throw new ArgumentException("Destination too small for the Huffman encoding.", nameof(destination));
        }

        ulong acc = 0;
        int bits = 0;
        int written = 0;
        foreach (byte b in source)
        {
            acc = (acc << Lengths[b]) | Codes[b];
            bits += Lengths[b];
            while (bits >= 8)
            {
                bits -= 8;
                destination[written++] = (byte)(acc >> bits);
            }
        }

        if (bits > 0)
        {
            // Pad with ones: the most significant bits of EOS.
            destination[written++] = (byte)((acc << (8 - bits)) | (0xFFu >> bits));
        }

        return written;
    }

    /// <summary>Decodes <paramref name="source"/> into <paramref name="destination"/>.</summary>
    /// <param name="source">The Huffman-encoded octets.</param>
    /// <param name="destination">Where the decoded octets go; its length is the caller's cap.</param>
    /// <param name="written">The octets decoded.</param>
    /// <returns><see langword="false"/> when the decoded string would not fit in <paramref name="destination"/> (the
    /// caller's bound: nothing past the cap is ever written).</returns>
    /// <exception cref="Http2ConnectionException">COMPRESSION_ERROR: EOS in the string, padding longer than 7 bits, or padding that is not
    /// all ones (RFC 7541 §5.2).</exception>
    public static bool TryDecode(ReadOnlySpan<byte> source, Span<byte> destination, out int written)
    {
        written = 0;
        uint code = 0;
        int length = 0;
        foreach (byte b in source)
        {
            for (int bit = 7; bit >= 0; bit--)
            {
                code = (code << 1) | (uint)((b >> bit) & 1);
                length++;
                uint offset = code - FirstCode[length];
                if (offset < (uint)CountByLength[length])
                {
                    int symbol = SymbolsByCode[FirstSymbolIndex[length] + (int)offset];

                    // RFC 7541 §5.2: "A Huffman-encoded string literal containing the EOS symbol MUST be treated as a
                    // decoding error."
                    if (symbol == Eos)
                    {
                        throw HpackError.Decoding("Huffman-encoded string contains EOS (RFC 7541 §5.2).");
                    }

                    if (written == destination.Length)
                    {
                        return false;
                    }

                    destination[written++] = (byte)symbol;
                    code = 0;
                    length = 0;
                }
                else if (length == MaxCodeLength)
                {
                    // Cannot happen with a complete code (Kraft sum 1), kept as a guard.
                    throw HpackError.Decoding("Invalid Huffman code (RFC 7541 §5.2).");
                }
            }
        }

        // RFC 7541 §5.2: "A padding strictly longer than 7 bits MUST be treated as a decoding error. A padding not
        // corresponding to the most significant bits of the code for the EOS symbol MUST be treated as a decoding error."
        if (length > 7)
        {
            throw HpackError.Decoding("Huffman padding longer than 7 bits (RFC 7541 §5.2).");
        }

        if (code != (1u << length) - 1)
        {
            throw HpackError.Decoding("Huffman padding is not the most significant bits of EOS (RFC 7541 §5.2).");
        }

        return true;
    }

    private static short[] BuildDecodingTables()
    {
        var symbols = new short[Codes.Length];
        int index = 0;
        for (int len = 1; len <= MaxCodeLength; len++)
        {
            FirstSymbolIndex[len] = index;
            uint first = uint.MaxValue;
            for (int s = 0; s < Codes.Length; s++)
            {
                if (Lengths[s] == len)
                {
                    first = Math.Min(first, Codes[s]);
                    symbols[index++] = (short)s;
                    CountByLength[len]++;
                }
            }

            // Lengths without codes get a first code no prefix can reach.
            FirstCode[len] = CountByLength[len] == 0 ? uint.MaxValue : first;
        }

        return symbols;
    }
}
