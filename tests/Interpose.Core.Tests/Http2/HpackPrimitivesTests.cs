using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;
using static Interpose.Core.Tests.Http2.Http2TestData;

namespace Interpose.Core.Tests.Http2;

public class HpackPrimitivesTests
{
    // RFC 7541 C.1: 10 with a 5-bit prefix, 1337 with a 5-bit prefix, 42 at an octet boundary.
    [Theory]
    [InlineData(10, 5, "0a")]
    [InlineData(1337, 5, "1f9a0a")]
    [InlineData(42, 8, "2a")]
    [InlineData(31, 5, "1f00")]
    [InlineData(int.MaxValue, 1, "01feffffff07")]
    public void Integers_encode_and_decode_per_appendix_c1(int value, int prefix, string hex)
    {
        byte[] buffer = new byte[IntegerCodec.MaxEncodedLength];
        int n = IntegerCodec.Encode(value, prefix, 0, buffer);
        Assert.Equal(hex, ToHex(buffer.AsSpan(0, n)));

        var decoder = new IntegerDecoder();
        bool done = decoder.BeginTryDecode(buffer[0], prefix, out int result);
        for (int i = 1; !done; i++)
        {
            done = decoder.TryDecode(buffer[i], out result);
        }

        Assert.Equal(value, result);
    }

    [Fact]
    public void Integer_above_int_max_is_a_decoding_error()
    {
        var decoder = new IntegerDecoder();
        Assert.False(decoder.BeginTryDecode(0x01, 1, out _));
        foreach (byte b in Hex("ffffffff"))
        {
            Assert.False(decoder.TryDecode(b, out _));
        }

        Assert.Equal(Http2ErrorCode.CompressionError, Assert.Throws<Http2ConnectionException>(() => decoder.TryDecode(0x08, out _)).ErrorCode);
    }

    [Fact]
    public void Dynamic_table_evicts_oldest_first_and_counts_32_octets_per_entry()
    {
        var table = new DynamicTable(100);
        table.Insert(Field("a", "1")); // 34
        table.Insert(Field("b", "2")); // 34 → 68
        Assert.Equal(68, table.Size);
        table.Insert(Field("c", "3")); // 102 > 100: "a" goes
        Assert.Equal(2, table.Count);
        Assert.Equal("c", Name(table[0]));
        Assert.Equal("b", Name(table[1]));
        Assert.Equal(68, table.Size);

        table.Resize(40); // only the newest fits
        Assert.Equal(1, table.Count);
        Assert.Equal("c", Name(table[0]));
        table.Resize(200);
        table.Insert(Field("d", new string('x', 60))); // 93
        Assert.Equal(["d", "c"], new[] { Name(table[0]), Name(table[1]) });
        Assert.Equal(127, table.Size);

        table.Insert(Field("e", new string('x', 300))); // larger than the table: empties it (RFC 7541 §4.4)
        Assert.Equal(0, table.Count);
        Assert.Equal(0, table.Size);
        Assert.Throws<ArgumentOutOfRangeException>(() => table[0]);
    }

    [Fact]
    public void Dynamic_table_ring_wraps_many_times()
    {
        var table = new DynamicTable(4096);
        for (int i = 0; i < 1000; i++)
        {
            table.Insert(Field("n" + i, new string('v', i % 50)));
            Assert.Equal("n" + i, Name(table[0]));
            Assert.True(table.Size <= 4096);
        }

        int expected = 0;
        for (int i = 0; i < table.Count; i++)
        {
            expected += table[i].Size;
        }

        Assert.Equal(expected, table.Size);
    }

    [Fact]
    public void Static_table_has_61_entries_from_appendix_a()
    {
        Assert.Equal(":authority", Name(StaticTable.Get(1)));
        Assert.Equal("GET", System.Text.Encoding.Latin1.GetString(StaticTable.Get(2).Value));
        Assert.Equal("gzip, deflate", System.Text.Encoding.Latin1.GetString(StaticTable.Get(16).Value));
        Assert.Equal("cookie", Name(StaticTable.Get(32)));
        Assert.Equal("set-cookie", Name(StaticTable.Get(55)));
        Assert.Equal("www-authenticate", Name(StaticTable.Get(61)));
        Assert.Equal(8, StaticTable.Find(":status"u8, "200"u8, out int nameIndex));
        Assert.Equal(8, nameIndex);
        Assert.Equal(0, StaticTable.Find(":status"u8, "302"u8, out nameIndex));
        Assert.Equal(8, nameIndex);
        Assert.Equal(0, StaticTable.Find("x-nope"u8, ""u8, out nameIndex));
        Assert.Equal(0, nameIndex);
    }

    private static HeaderField Field(string name, string value) => new(System.Text.Encoding.Latin1.GetBytes(name), System.Text.Encoding.Latin1.GetBytes(value));

    private static string Name(HeaderField field) => System.Text.Encoding.Latin1.GetString(field.Name);
}
