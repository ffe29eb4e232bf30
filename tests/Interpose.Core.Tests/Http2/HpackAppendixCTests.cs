using System.Buffers;
using Interpose.Core.Http;
using Interpose.Core.Http2.Hpack;
using Interpose.Core.Tests.Corpus;
using static Interpose.Core.Tests.Http2.Http2TestData;

namespace Interpose.Core.Tests.Http2;

/// <summary>RFC 7541 Appendix C, byte for byte: the decoder reads each example to the listed fields and table size,
/// the encoder writes exactly the listed bytes, and every split point of every block decodes the same.</summary>
public class HpackAppendixCTests
{
    private static readonly string[] Request1 = [":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com"];
    private static readonly string[] Request2 = [":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com", "cache-control: no-cache"];
    private static readonly string[] Request3 = [":method: GET", ":scheme: https", ":path: /index.html", ":authority: www.example.com", "custom-key: custom-value"];
    private static readonly string[] Response1 = [":status: 302", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"];
    private static readonly string[] Response2 = [":status: 307", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"];
    private static readonly string[] Response3 = [":status: 200", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:22 GMT", "location: https://www.example.com", "content-encoding: gzip", "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"];

    // (section, table size, Huffman, [(block hex, fields, table size after)])
    public static TheoryData<string> Sequences => ["C.3", "C.4", "C.5", "C.6"];

    private static (int TableSize, bool Huffman, (string Hex, string[] Fields, int TableSize)[] Blocks) Sequence(string name) => name switch
    {
        "C.3" => (4096, false,
        [
            ("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", Request1, 57),
            ("8286 84be 5808 6e6f 2d63 6163 6865", Request2, 110),
            ("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", Request3, 164),
        ]),
        "C.4" => (4096, true,
        [
            ("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", Request1, 57),
            ("8286 84be 5886 a8eb 1064 9cbf", Request2, 110),
            ("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", Request3, 164),
        ]),
        "C.5" => (256, false,
        [
            ("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", Response1, 222),
            ("4803 3330 37c1 c0bf", Response2, 222),
            ("88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31", Response3, 215),
        ]),
        "C.6" => (256, true,
        [
            ("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3", Response1, 222),
            ("4883 640e ffc1 c0bf", Response2, 222),
            ("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07", Response3, 215),
        ]),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Sequences))]
    public void Decoder_reads_the_appendix_c_sequence(string name)
    {
        (int tableSize, _, var blocks) = Sequence(name);
        var decoder = new HpackDecoder(tableSize);
        foreach ((string hex, string[] fields, int size) in blocks)
        {
            var collector = new FieldCollector();
            decoder.Decode(Hex(hex), endHeaders: true, collector);
            Assert.Equal(fields, collector.Fields);
            Assert.Equal(size, decoder.DynamicTableSize);
            Assert.False(decoder.HeaderListSizeExceeded);
        }
    }

    [Theory]
    [MemberData(nameof(Sequences))]
    public void Encoder_writes_the_appendix_c_sequence(string name)
    {
        (int tableSize, bool huffman, var blocks) = Sequence(name);
        var encoder = new HpackEncoder(tableSize, huffman);
        foreach ((string hex, string[] fields, int size) in blocks)
        {
            var output = new ArrayBufferWriter<byte>();
            encoder.EncodeBlock(fields.Select(Split), output);
            Assert.Equal(ToHex(Hex(hex)), ToHex(output.WrittenSpan));
            Assert.Equal(size, encoder.DynamicTableSize);
        }
    }

    [Theory]
    [MemberData(nameof(Sequences))]
    public void Every_split_point_of_every_block_decodes_the_same(string name)
    {
        // A field may be split anywhere across HEADERS and CONTINUATION (RFC 7541 §3.2 / RFC 9113 §4.3).
        (int tableSize, _, var blocks) = Sequence(name);
        int longest = blocks.Max(b => Hex(b.Hex).Length);
        for (int split = 1; split < longest; split++)
        {
            var decoder = new HpackDecoder(tableSize);
            foreach ((string hex, string[] fields, int size) in blocks)
            {
                byte[] block = Hex(hex);
                int at = Math.Min(split, block.Length);
                var collector = new FieldCollector();
                decoder.Decode(block.AsSpan(0, at), endHeaders: false, collector);
                decoder.Decode(block.AsSpan(at), endHeaders: true, collector);
                Assert.Equal(fields, collector.Fields);
                Assert.Equal(size, decoder.DynamicTableSize);
            }
        }

        // One byte per fragment, and a multi-segment sequence.
        var oneByte = new HpackDecoder(tableSize);
        var segmented = new HpackDecoder(tableSize);
        foreach ((string hex, string[] fields, _) in blocks)
        {
            byte[] block = Hex(hex);
            var collector = new FieldCollector();
            for (int i = 0; i < block.Length; i++)
            {
                oneByte.Decode(block.AsSpan(i, 1), endHeaders: i == block.Length - 1, collector);
            }

            Assert.Equal(fields, collector.Fields);
            collector = new FieldCollector();
            segmented.Decode(SegmentedSequence.Chunked(block, 3), endHeaders: true, collector);
            Assert.Equal(fields, collector.Fields);
        }
    }

    [Fact]
    public void C2_single_representations_decode_and_encode()
    {
        // C.2.1 literal with incremental indexing, new name.
        const string C21 = "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572";
        var decoder = new HpackDecoder();
        var collector = new FieldCollector();
        decoder.Decode(Hex(C21), true, collector);
        Assert.Equal(["custom-key: custom-header"], collector.Fields);
        Assert.Equal(55, decoder.DynamicTableSize);
        Assert.Equal(ToHex(Hex(C21)), Encode(new HpackEncoder(useHuffman: false), "custom-key", "custom-header", HpackIndexing.Incremental));

        // C.2.2 literal without indexing, indexed name: the table stays empty.
        const string C22 = "040c 2f73 616d 706c 652f 7061 7468";
        decoder = new HpackDecoder();
        collector = new FieldCollector();
        decoder.Decode(Hex(C22), true, collector);
        Assert.Equal([":path: /sample/path"], collector.Fields);
        Assert.Equal(0, decoder.DynamicTableSize);
        var encoder = new HpackEncoder(useHuffman: false);
        Assert.Equal(ToHex(Hex(C22)), Encode(encoder, ":path", "/sample/path", HpackIndexing.WithoutIndexing));
        Assert.Equal(0, encoder.DynamicTableSize);

        // C.2.3 literal never indexed, new name: the flag reaches the handler.
        const string C23 = "1008 7061 7373 776f 7264 0673 6563 7265 74";
        decoder = new HpackDecoder();
        collector = new FieldCollector();
        decoder.Decode(Hex(C23), true, collector);
        Assert.Equal(["(never) password: secret"], collector.Fields);
        Assert.Equal(0, decoder.DynamicTableSize);
        Assert.Equal(ToHex(Hex(C23)), Encode(new HpackEncoder(useHuffman: false), "password", "secret", HpackIndexing.NeverIndexed));

        // C.2.4 indexed field.
        decoder = new HpackDecoder();
        collector = new FieldCollector();
        decoder.Decode(Hex("82"), true, collector);
        Assert.Equal([":method: GET"], collector.Fields);
        Assert.Equal("82", Encode(new HpackEncoder(), ":method", "GET", HpackIndexing.Auto));
    }

    private static string Encode(HpackEncoder encoder, string name, string value, HpackIndexing indexing)
    {
        var output = new ArrayBufferWriter<byte>();
        encoder.BeginBlock(output);
        encoder.EncodeField(name, value, output, indexing);
        return ToHex(output.WrittenSpan);
    }

    private static HttpHeader Split(string field)
    {
        int colon = field.IndexOf(": ", 1, StringComparison.Ordinal);
        return new HttpHeader(field[..colon], field[(colon + 2)..]);
    }
}
