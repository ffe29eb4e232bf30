using System.Buffers;
using Interpose.Core.Http;
using Interpose.Core.Http2.Hpack;
using static Interpose.Core.Tests.Http2.Http2TestData;

namespace Interpose.Core.Tests.Http2;

public class HpackEncoderTests
{
    private static (string Hex, List<string> Decoded) RoundTrip(HpackEncoder encoder, HpackDecoder decoder, params HttpHeader[] fields)
    {
        var output = new ArrayBufferWriter<byte>();
        encoder.EncodeBlock(fields, output);
        var collector = new FieldCollector();
        decoder.Decode(output.WrittenSpan, true, collector);
        return (ToHex(output.WrittenSpan), collector.Fields);
    }

    [Fact]
    public void Names_are_lowercased_and_order_and_duplicates_kept()
    {
        var (_, decoded) = RoundTrip(new HpackEncoder(), new HpackDecoder(),
            new(":status", "200"), new("X-Custom", "One"), new("Set-Cookie", "a=1"), new("x-custom", "Two"), new("Set-Cookie", "b=2"));
        Assert.Equal([":status: 200", "x-custom: One", "set-cookie: a=1", "x-custom: Two", "set-cookie: b=2"], decoded);
    }

    [Theory]
    [InlineData("authorization", "Bearer abcdefghijklmnopqrstuvwxyz0123456789")]
    [InlineData("Proxy-Authorization", "Basic dXNlcjpwYXNz")]
    [InlineData("cookie", "sid=12345")]
    public void Sensitive_fields_are_never_indexed(string name, string value)
    {
        var encoder = new HpackEncoder();
        var (hex, decoded) = RoundTrip(encoder, new HpackDecoder(), new HttpHeader(name, value));
        Assert.Equal(["(never) " + name.ToLowerInvariant() + ": " + value], decoded);
        Assert.Equal(0x10, Hex(hex)[0] & 0xF0); // 0001xxxx
        Assert.Equal(0, encoder.DynamicTableCount);
    }

    [Fact]
    public void Long_cookie_is_indexed_and_then_referenced()
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        var cookie = new HttpHeader("cookie", "session=0123456789abcdefghijklmnop");
        var (first, _) = RoundTrip(encoder, decoder, cookie);
        Assert.Equal(0x40, Hex(first)[0] & 0xC0); // incremental indexing, name from the static table
        var (second, decoded) = RoundTrip(encoder, decoder, cookie);
        Assert.Equal("be", second);
        Assert.Equal(["cookie: session=0123456789abcdefghijklmnop"], decoded);
    }

    [Fact]
    public void Explicit_never_indexed_wins_over_a_table_match()
    {
        var encoder = new HpackEncoder(useHuffman: false);
        var output = new ArrayBufferWriter<byte>();
        encoder.EncodeField(":method", "GET", output, HpackIndexing.NeverIndexed);
        Assert.Equal("1203474554", ToHex(output.WrittenSpan)); // 0001 + name index 2, literal "GET"
    }

    [Fact]
    public void Zero_table_encoder_never_touches_the_table()
    {
        var encoder = new HpackEncoder(maxDynamicTableSize: 0);
        var decoder = new HpackDecoder();
        var (hex, decoded) = RoundTrip(encoder, decoder, new HttpHeader("x-a", "1"), new HttpHeader("x-a", "1"));
        Assert.Equal(["x-a: 1", "x-a: 1"], decoded);
        Assert.Equal(0, decoder.DynamicTableCount);
        Assert.Equal(0, Hex(hex)[0] & 0xF0); // without indexing
    }

    [Fact]
    public void Lowered_peer_setting_is_signalled_at_the_next_block_with_the_minimum_first()
    {
        var encoder = new HpackEncoder(useHuffman: false);
        var decoder = new HpackDecoder();
        RoundTrip(encoder, decoder, new HttpHeader("x-a", "1"));
        Assert.Equal(1, encoder.DynamicTableCount);

        // RFC 7541 §4.2: changed twice between blocks (0, then 2048): signal the smallest, then the final one.
        encoder.SetPeerHeaderTableSize(0);
        encoder.SetPeerHeaderTableSize(2048);
        var (hex, decoded) = RoundTrip(encoder, decoder, new HttpHeader("x-a", "1"));
        Assert.StartsWith("20" + "3fe10f", hex, StringComparison.Ordinal); // update to 0, update to 2048
        Assert.Equal(["x-a: 1"], decoded);
        Assert.Equal(2048, decoder.DynamicTableMaxSize);
        Assert.Equal(1, decoder.DynamicTableCount);

        // Raised and lowered back between two blocks without going below the table size: no update.
        encoder.SetPeerHeaderTableSize(1 << 20);
        encoder.SetPeerHeaderTableSize(2048);
        (hex, _) = RoundTrip(encoder, decoder, new HttpHeader(":method", "GET"));
        Assert.Equal("82", hex);
    }

    [Fact]
    public void Encoder_and_decoder_tables_stay_in_step_through_eviction()
    {
        var random = new Random(41);
        var encoder = new HpackEncoder(maxDynamicTableSize: 256);
        var decoder = new HpackDecoder(maxHeaderTableSize: 256);
        for (int block = 0; block < 200; block++)
        {
            var fields = new List<HttpHeader>();
            for (int i = 0; i < random.Next(1, 8); i++)
            {
                fields.Add(new HttpHeader("x-h" + random.Next(6), new string((char)('a' + random.Next(26)), random.Next(0, 120))));
            }

            var (_, decoded) = RoundTrip(encoder, decoder, [.. fields]);
            Assert.Equal(fields.Select(f => f.Name + ": " + f.Value), decoded);
            Assert.Equal(encoder.DynamicTableSize, decoder.DynamicTableSize);
            Assert.True(decoder.DynamicTableSize <= 256);
        }
    }

    [Fact]
    public void Non_latin1_characters_are_refused()
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.Throws<ArgumentException>(() => new HpackEncoder().EncodeField("x", "\u20ac", output));
    }
}
