using System.Buffers;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;
using static Interpose.Core.Tests.Http2.Http2TestData;

namespace Interpose.Core.Tests.Http2;

public class HpackDecoderTests
{
    private static Http2ErrorCode DecodeError(HpackDecoder decoder, string hex, bool endHeaders = true) =>
        Assert.Throws<Http2ConnectionException>(() => decoder.Decode(Hex(hex), endHeaders, new FieldCollector())).ErrorCode;

    [Theory]
    [InlineData("80", "index 0 (RFC 7541 §6.1)")]
    [InlineData("be", "index 62 with an empty dynamic table (§2.3.3)")]
    [InlineData("7f00", "literal name index 63 past the tables")]
    [InlineData("ff ff ff ff ff 0f", "index above 2^31-1 (§5.1)")]
    [InlineData("ff 80 80 80 80 80 00", "index with six continuation octets (§5.1)")]
    [InlineData("4000 0161", "empty literal name (CVE-2019-9516)")]
    [InlineData("3fe21f", "size update 4096+ above the 4096 ceiling (§6.3)")]
    [InlineData("82 20", "size update after a field (§4.2)")]
    [InlineData("4005 6162", "block ends inside a name (§3.2)")]
    [InlineData("41", "block ends after a literal's first octet")]
    [InlineData("ff", "block ends inside an integer")]
    [InlineData("4181 ff", "Huffman value that is only padding (§5.2)")]
    public void Malformed_blocks_are_compression_errors(string hex, string why)
    {
        _ = why;
        Assert.Equal(Http2ErrorCode.CompressionError, DecodeError(new HpackDecoder(), hex));
    }

    [Fact]
    public void Size_update_at_the_start_resizes_and_evicts()
    {
        var decoder = new HpackDecoder();
        decoder.Decode(Hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"), true, new FieldCollector());
        Assert.Equal(1, decoder.DynamicTableCount);

        // Two updates (0 then 4096) before the first field: the table is emptied then allowed to grow again.
        var collector = new FieldCollector();
        decoder.Decode(Hex("20 3fe11f 82"), true, collector);
        Assert.Equal(0, decoder.DynamicTableCount);
        Assert.Equal(4096, decoder.DynamicTableMaxSize);
        Assert.Equal([":method: GET"], collector.Fields);
    }

    [Fact]
    public void Lowered_setting_requires_a_size_update_at_the_next_block()
    {
        // RFC 7541 §4.2: after we lower SETTINGS_HEADER_TABLE_SIZE the peer's next block must start with an update.
        var decoder = new HpackDecoder();
        decoder.SetMaxHeaderTableSize(100);
        Assert.Equal(Http2ErrorCode.CompressionError, DecodeError(decoder, "82"));

        decoder = new HpackDecoder();
        decoder.SetMaxHeaderTableSize(100);
        Assert.Equal(Http2ErrorCode.CompressionError, DecodeError(decoder, "3f46")); // 31 + 70 = 101 > 100

        decoder = new HpackDecoder();
        decoder.SetMaxHeaderTableSize(100);
        var collector = new FieldCollector();
        decoder.Decode(Hex("3f45 82"), true, collector); // update to 100, then a field
        Assert.Equal(100, decoder.DynamicTableMaxSize);
        Assert.Equal([":method: GET"], collector.Fields);
    }

    [Fact]
    public void Hpack_bomb_is_bounded_and_the_table_stays_in_step()
    {
        // One 4,000-octet entry inserted once, then referenced 1,000 times: 4 MB decoded from ~5 KB. The decoder must
        // stop emitting past the list size, flag it, and still decode the block to its end.
        var output = new ArrayBufferWriter<byte>();
        var encoder = new HpackEncoder(useHuffman: false);
        encoder.BeginBlock(output);
        encoder.EncodeField("x-bomb", new string('a', 4000), output, HpackIndexing.Incremental);
        for (int i = 0; i < 1000; i++)
        {
            output.Write(Hex("be")); // index 62: the entry just inserted
        }

        var decoder = new HpackDecoder(maxHeaderListSize: 16 * 1024);
        var counting = new CountingHandler();
        decoder.Decode(output.WrittenSpan, endHeaders: true, counting);
        Assert.True(decoder.HeaderListSizeExceeded);
        Assert.True(counting.Bytes <= 16 * 1024, $"{counting.Bytes} octets emitted");
        Assert.Equal(4, counting.Count); // 4 × (6 + 4000 + 32) fit in 16 KiB, the fifth does not

        // The next block decodes normally and sees the same table.
        var collector = new FieldCollector();
        decoder.Decode(Hex("be"), true, collector);
        Assert.False(decoder.HeaderListSizeExceeded);
        Assert.Single(collector.Fields);
        Assert.StartsWith("x-bomb: aaaa", collector.Fields[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Oversized_literal_is_skipped_without_being_buffered()
    {
        // A literal without indexing claiming a 2^31-1 octet value: the decoder must not allocate it. It counts the
        // octets as they come, flags the block, and keeps going.
        var decoder = new HpackDecoder(maxHeaderListSize: 1024);
        var collector = new FieldCollector();
        // Without indexing, static name 'accept' (19 = 0x0f + 0x04), value length 1,000,000 (not Huffman).
        var block = new ArrayBufferWriter<byte>();
        block.Write(Hex("0f04 7f c1 83 3d")); // 127 + 0x41 + (0x03 << 7) + (0x3d << 14) = 1,000,000
        byte[] chunk = new byte[100_000];
        long before = GC.GetAllocatedBytesForCurrentThread();
        decoder.Decode(block.WrittenSpan, endHeaders: false, collector);
        for (int i = 0; i < 10; i++)
        {
            decoder.Decode(chunk, endHeaders: false, collector);
        }

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10_000, "the skipped value was buffered");

        decoder.Decode(Hex("82"), endHeaders: true, collector);
        Assert.True(decoder.HeaderListSizeExceeded);
        Assert.Empty(collector.Fields); // once past the budget nothing more is emitted in this block
    }

    [Fact]
    public void Too_many_small_fields_are_cut_at_the_field_count()
    {
        var decoder = new HpackDecoder(maxFieldCount: 100);
        var counting = new CountingHandler();
        byte[] block = [.. Enumerable.Repeat((byte)0x82, 101)];
        decoder.Decode(block, true, counting);
        Assert.Equal(100, counting.Count);
        Assert.True(decoder.HeaderListSizeExceeded);

        decoder.Decode(block.AsSpan(0, 100), true, counting);
        Assert.False(decoder.HeaderListSizeExceeded);
    }

    [Fact]
    public void Exactly_the_list_size_is_allowed()
    {
        // ":method: GET" is 7 + 3 + 32 = 42 octets; 3 of them = 126.
        var decoder = new HpackDecoder(maxHeaderListSize: 126);
        var counting = new CountingHandler();
        decoder.Decode(Hex("828282"), true, counting);
        Assert.False(decoder.HeaderListSizeExceeded);
        decoder.Decode(Hex("82828282"), true, counting);
        Assert.True(decoder.HeaderListSizeExceeded);
    }

    [Fact]
    public void Entry_larger_than_the_table_empties_it_without_error()
    {
        // RFC 7541 §4.4: not an error; the table ends up empty — also when the decoder skips the oversized string.
        var decoder = new HpackDecoder(maxHeaderTableSize: 100, maxHeaderListSize: 50);
        decoder.Decode(Hex("4001 61 0162"), true, new FieldCollector()); // a: b, 34 octets
        Assert.Equal(1, decoder.DynamicTableCount);
        var output = new ArrayBufferWriter<byte>();
        output.Write(Hex("4001 61 7f 21")); // value of 127 + 33 = 160 octets
        output.Write(new byte[160]);
        var collector = new FieldCollector();
        decoder.Decode(output.WrittenSpan, true, collector);
        Assert.Equal(0, decoder.DynamicTableCount);
        Assert.Equal(0, decoder.DynamicTableSize);
        Assert.True(decoder.HeaderListSizeExceeded);
    }

    [Fact]
    public void Never_indexed_flag_survives_a_split()
    {
        byte[] block = Hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
        for (int split = 1; split < block.Length; split++)
        {
            var decoder = new HpackDecoder();
            var collector = new FieldCollector();
            decoder.Decode(new ReadOnlySequence<byte>(block, 0, split), false, collector);
            decoder.Decode(new ReadOnlySequence<byte>(block, split, block.Length - split), true, collector);
            Assert.Equal(["(never) password: secret"], collector.Fields);
        }
    }

    private sealed class CountingHandler : IHeaderFieldHandler
    {
        public int Count { get; private set; }

        public long Bytes { get; private set; }

        public void OnHeaderField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed)
        {
            Count++;
            Bytes += name.Length + value.Length + 32;
        }
    }
}
