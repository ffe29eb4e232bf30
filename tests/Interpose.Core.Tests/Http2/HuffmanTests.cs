using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;
using static Interpose.Core.Tests.Http2.Http2TestData;

namespace Interpose.Core.Tests.Http2;

public class HuffmanTests
{
    // Spot checks against RFC 7541 Appendix B ("code as hex aligned to LSB", "len in bits"), across every length class.
    [Theory]
    [InlineData(0, 0x1ff8u, 13)]
    [InlineData(1, 0x7fffd8u, 23)]
    [InlineData(10, 0x3ffffffcu, 30)]
    [InlineData(13, 0x3ffffffdu, 30)]
    [InlineData(22, 0x3ffffffeu, 30)]
    [InlineData(' ', 0x14u, 6)]
    [InlineData('0', 0x0u, 5)]
    [InlineData('a', 0x3u, 5)]
    [InlineData('t', 0x9u, 5)]
    [InlineData(':', 0x5cu, 7)]
    [InlineData('X', 0xfcu, 8)]
    [InlineData('!', 0x3f8u, 10)]
    [InlineData('\'', 0x7fau, 11)]
    [InlineData('#', 0xffau, 12)]
    [InlineData('^', 0x3ffcu, 14)]
    [InlineData('<', 0x7ffcu, 15)]
    [InlineData('\\', 0x7fff0u, 19)]
    [InlineData(128, 0xfffe6u, 20)]
    [InlineData(153, 0x1fffdcu, 21)]
    [InlineData(129, 0x3fffd2u, 22)]
    [InlineData(135, 0x7fffd9u, 23)]
    [InlineData(142, 0xffffebu, 24)]
    [InlineData(199, 0x1ffffecu, 25)]
    [InlineData(192, 0x3ffffe0u, 26)]
    [InlineData(203, 0x7ffffdeu, 27)]
    [InlineData(127, 0xffffffcu, 28)]
    [InlineData(254, 0x7fffff0u, 27)]
    [InlineData(255, 0x3ffffeeu, 26)]
    [InlineData(256, 0x3fffffffu, 30)]
    public void Table_entries_match_rfc_7541_appendix_b(int symbol, uint code, int length)
    {
        Assert.Equal((code, length), Huffman.GetCode(symbol));
    }

    [Fact]
    public void Code_is_a_complete_prefix_code()
    {
        // Kraft sum exactly 1 and no code is a prefix of another: a typo in the table would break one of these.
        double kraft = 0;
        var codes = Enumerable.Range(0, 257).Select(Huffman.GetCode).ToArray();
        foreach ((uint _, int len) in codes)
        {
            kraft += Math.Pow(2, -len);
        }

        Assert.Equal(1.0, kraft, 12);
        for (int a = 0; a < codes.Length; a++)
        {
            for (int b = 0; b < codes.Length; b++)
            {
                if (a != b && codes[a].Length <= codes[b].Length)
                {
                    Assert.NotEqual(codes[a].Code, codes[b].Code >> (codes[b].Length - codes[a].Length));
                }
            }
        }
    }

    [Fact]
    public void Every_octet_round_trips_alone_and_together()
    {
        for (int b = 0; b < 256; b++)
        {
            AssertRoundTrip([(byte)b]);
        }

        AssertRoundTrip([.. Enumerable.Range(0, 256).Select(i => (byte)i)]);
        AssertRoundTrip([]);
    }

    [Fact]
    public void Random_strings_round_trip()
    {
        var random = new Random(7541);
        for (int i = 0; i < 500; i++)
        {
            byte[] s = new byte[random.Next(0, 200)];
            random.NextBytes(s);
            AssertRoundTrip(s);
        }
    }

    [Fact]
    public void Encodes_the_appendix_c_strings()
    {
        Assert.Equal("f1e3c2e5f23a6ba0ab90f4ff", Encode("www.example.com"u8));
        Assert.Equal("a8eb10649cbf", Encode("no-cache"u8));
        Assert.Equal("25a849e95ba97d7f", Encode("custom-key"u8));
        Assert.Equal("25a849e95bb8e8b4bf", Encode("custom-value"u8));
        Assert.Equal("640eff", Encode("307"u8));
    }

    [Fact]
    public void Padding_longer_than_7_bits_is_an_error()
    {
        // 'a' (00011) + 11 one-bits of padding: 0x1f 0xff.
        var e = Assert.Throws<Http2ConnectionException>(() => Huffman.TryDecode(Hex("1fff"), new byte[10], out _));
        Assert.Equal(Http2ErrorCode.CompressionError, e.ErrorCode);

        // A lone 0xff: 8 bits of padding and no symbol.
        Assert.Throws<Http2ConnectionException>(() => Huffman.TryDecode(Hex("ff"), new byte[10], out _));
    }

    [Fact]
    public void Padding_that_is_not_all_ones_is_an_error()
    {
        // 'a' (00011) + 000 padding.
        Assert.Throws<Http2ConnectionException>(() => Huffman.TryDecode(Hex("18"), new byte[10], out _));

        // Control: 'a' + 111 padding decodes.
        Assert.True(Huffman.TryDecode(Hex("1f"), new byte[10], out int n));
        Assert.Equal(1, n);
    }

    [Fact]
    public void Eos_inside_the_string_is_an_error()
    {
        // EOS (30 ones) followed by 2 padding ones: 0xffffffff.
        Assert.Throws<Http2ConnectionException>(() => Huffman.TryDecode(Hex("ffffffff"), new byte[10], out _));
    }

    [Fact]
    public void Decoding_stops_at_the_callers_cap()
    {
        byte[] encoded = new byte[Huffman.GetEncodedLength("aaaaaaaa"u8)];
        Huffman.Encode("aaaaaaaa"u8, encoded);
        byte[] small = new byte[5];
        Assert.False(Huffman.TryDecode(encoded, small, out int written));
        Assert.Equal(5, written);
        Assert.True(Huffman.TryDecode(encoded, new byte[8], out written));
        Assert.Equal(8, written);
    }

    private static string Encode(ReadOnlySpan<byte> s)
    {
        byte[] output = new byte[Huffman.GetEncodedLength(s)];
        Assert.Equal(output.Length, Huffman.Encode(s, output));
        return ToHex(output);
    }

    private static void AssertRoundTrip(byte[] s)
    {
        byte[] encoded = new byte[Huffman.GetEncodedLength(s)];
        Huffman.Encode(s, encoded);
        byte[] decoded = new byte[s.Length];
        Assert.True(Huffman.TryDecode(encoded, decoded, out int written));
        Assert.Equal(s.Length, written);
        Assert.Equal(s, decoded);
    }
}
