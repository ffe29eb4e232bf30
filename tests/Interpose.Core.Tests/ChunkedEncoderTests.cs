using System.Buffers;
using System.Text;
using Interpose.Core.Http;

namespace Interpose.Core.Tests;

public class ChunkedEncoderTests
{
    [Theory]
    [InlineData(1, "1\r\n")]
    [InlineData(255, "ff\r\n")]
    [InlineData(65536, "10000\r\n")]
    [InlineData(long.MaxValue, "7fffffffffffffff\r\n")]
    public void Chunk_header_is_lower_case_hex(long size, string expected)
    {
        var w = new ArrayBufferWriter<byte>();
        ChunkedEncoder.WriteChunkHeader(size, w);
        Assert.Equal(expected, Encoding.ASCII.GetString(w.WrittenSpan));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Chunk_header_refuses_non_positive_sizes(long size)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ChunkedEncoder.WriteChunkHeader(size, new ArrayBufferWriter<byte>()));
    }

    [Fact]
    public void Terminator_and_last_chunk_with_trailers()
    {
        var w = new ArrayBufferWriter<byte>();
        ChunkedEncoder.WriteChunkHeader(3, w);
        w.Write("abc"u8);
        ChunkedEncoder.WriteChunkTerminator(w);
        var trailers = new HttpHeaders();
        trailers.Add("X-Sum", "6");
        trailers.Add("x-sum", "again");
        ChunkedEncoder.WriteLastChunk(trailers, w);
        string text = Encoding.Latin1.GetString(w.WrittenSpan);
        Assert.Equal("3\r\nabc\r\n0\r\nX-Sum: 6\r\nx-sum: again\r\n\r\n", text);

        (string body, string decodedTrailers) = ChunkedDecoderTests.DecodeAll(w.WrittenSpan.ToArray(), Http1Limits.Default, int.MaxValue);
        Assert.Equal("abc", body);
        Assert.Equal("X-Sum=6\nx-sum=again\n", decodedTrailers);
    }

    [Fact]
    public void Last_chunk_without_trailers()
    {
        var w = new ArrayBufferWriter<byte>();
        ChunkedEncoder.WriteLastChunk(null, w);
        Assert.Equal("0\r\n\r\n", Encoding.ASCII.GetString(w.WrittenSpan));
    }
}
