using System.Buffers;
using System.Text;
using Interpose.Core.Http;
using Interpose.Core.Tests.Corpus;

namespace Interpose.Core.Tests;

public class ChunkedDecoderTests
{
    [Theory]
    [InlineData("x\r\n", RejectionReason.InvalidChunkSize)]
    [InlineData("\r\n", RejectionReason.InvalidChunkSize)]
    [InlineData("-1\r\n", RejectionReason.InvalidChunkSize)]
    [InlineData("+1\r\n", RejectionReason.InvalidChunkSize)]
    [InlineData("0x5\r\n", RejectionReason.InvalidChunkSize)]
    [InlineData(" 5\r\n", RejectionReason.InvalidChunkSize)]
    [InlineData("5 \r\n", RejectionReason.InvalidChunkSize)]
    [InlineData("5\t;a\r\n", RejectionReason.InvalidChunkSize)]
    [InlineData(";a\r\n", RejectionReason.InvalidChunkSize)]
    [InlineData("5\n", RejectionReason.InvalidChunkSize)]
    [InlineData("5\r\r", RejectionReason.InvalidChunkTerminator)]
    [InlineData("5\rx", RejectionReason.InvalidChunkTerminator)]
    [InlineData("10000000000000000\r\n", RejectionReason.ChunkSizeOverflow)]
    [InlineData("00000000000000001\r\n", RejectionReason.ChunkSizeOverflow)]
    [InlineData("8000000000000000\r\n", RejectionReason.ChunkSizeOverflow)]
    [InlineData("FFFFFFFFFFFFFFFF\r\n", RejectionReason.ChunkSizeOverflow)]
    [InlineData("5\r\nhelloX\r\n", RejectionReason.InvalidChunkTerminator)]
    [InlineData("5\r\nhello\rX", RejectionReason.InvalidChunkTerminator)]
    [InlineData("5\r\nhello\n", RejectionReason.InvalidChunkTerminator)]
    [InlineData("5\r\nhello\r\n0\r\nX: a\n\r\n", RejectionReason.BareLineFeed)]
    [InlineData("0\r\nX : a\r\n\r\n", RejectionReason.WhitespaceBeforeColon)]
    [InlineData("0\r\nX: a\r\n b\r\n\r\n", RejectionReason.ObsoleteLineFolding)]
    [InlineData("0\r\nX: a\0\r\n\r\n", RejectionReason.InvalidHeaderValue)]
    [InlineData("0\r\nNoColon\r\n\r\n", RejectionReason.InvalidHeaderName)]
    [InlineData("1;a\0b\r\nx\r\n", RejectionReason.InvalidChunkExtension)]
    [InlineData("1;a\nb\r\nx\r\n", RejectionReason.InvalidChunkExtension)]
    public void Malformed_chunked_body_is_rejected(string body, RejectionReason reason)
    {
        var ex = Assert.Throws<HttpProtocolException>(() => DecodeAll(HttpCorpus.Bytes(body), Http1Limits.Default, chunkSize: int.MaxValue));
        Assert.Equal(reason, ex.Reason);
        ex = Assert.Throws<HttpProtocolException>(() => DecodeAll(HttpCorpus.Bytes(body), Http1Limits.Default, chunkSize: 1));
        Assert.Equal(reason, ex.Reason);
    }

    [Fact]
    public void Largest_chunk_size_within_sixteen_digits_is_accepted()
    {
        var decoder = new ChunkedDecoder(Http1Limits.Default);
        ChunkedReadResult r = decoder.Read(new ReadOnlySequence<byte>("7FFFFFFFFFFFFFFF\r\nab"u8.ToArray()), out _, out ReadOnlySequence<byte> data);
        Assert.Equal(ChunkedReadResult.Data, r);
        Assert.Equal(2, data.Length);
    }

    [Fact]
    public void Extension_longer_than_the_limit_is_rejected()
    {
        var limits = new Http1Limits { MaxChunkExtensionLength = 10 };
        Assert.Equal("x", DecodeAll(HttpCorpus.Bytes("1;123456789\r\nx\r\n0\r\n\r\n"), limits, int.MaxValue).Body);
        var ex = Assert.Throws<HttpProtocolException>(() => DecodeAll(HttpCorpus.Bytes("1;1234567890\r\nx\r\n0\r\n\r\n"), limits, int.MaxValue));
        Assert.Equal(RejectionReason.ChunkExtensionTooLong, ex.Reason);
    }

    [Fact]
    public void Extension_flood_is_rejected_before_the_line_ends()
    {
        var decoder = new ChunkedDecoder(Http1Limits.Default);
        byte[] flood = HttpCorpus.Bytes("1;" + new string('a', 5000));
        var ex = Assert.Throws<HttpProtocolException>(() => decoder.Read(new ReadOnlySequence<byte>(flood), out _, out _));
        Assert.Equal(RejectionReason.ChunkExtensionTooLong, ex.Reason);
    }

    [Fact]
    public void Oversized_trailers_are_rejected_before_they_end()
    {
        var limits = new Http1Limits { MaxTrailerBytes = 64 };
        var ex = Assert.Throws<HttpProtocolException>(() => DecodeAll(HttpCorpus.Bytes("0\r\nX: " + new string('a', 100)), limits, 8));
        Assert.Equal(RejectionReason.TrailersTooLarge, ex.Reason);
        Assert.Equal(400, ex.StatusCode);
    }

    [Fact]
    public void Response_decoder_errors_carry_502()
    {
        var decoder = new ChunkedDecoder(Http1Limits.Default, inResponse: true);
        var ex = Assert.Throws<HttpProtocolException>(() => decoder.Read(new ReadOnlySequence<byte>("zz\r\n"u8.ToArray()), out _, out _));
        Assert.True(ex.InResponse);
        Assert.Equal(502, ex.StatusCode);
    }

    [Fact]
    public void Data_is_a_slice_of_the_input_and_consumed_tracks_it()
    {
        byte[] input = "5\r\nhello\r\n"u8.ToArray();
        var buffer = new ReadOnlySequence<byte>(input);
        var decoder = new ChunkedDecoder(Http1Limits.Default);
        Assert.Equal(ChunkedReadResult.Data, decoder.Read(buffer, out SequencePosition consumed, out ReadOnlySequence<byte> data));
        Assert.Equal("hello", Encoding.ASCII.GetString(data.ToArray()));
        Assert.Equal(8, buffer.Slice(buffer.Start, consumed).Length);
        Assert.Equal(ChunkedReadResult.NeedMoreData, decoder.Read(buffer.Slice(consumed), out SequencePosition consumed2, out data));
        Assert.True(data.IsEmpty);
        Assert.Equal(input.Length, buffer.Slice(buffer.Start, consumed2).Length);
        Assert.Null(decoder.Trailers);
        Assert.False(decoder.IsCompleted);
    }

    [Fact]
    public void Completed_leaves_following_bytes_unconsumed_and_reset_starts_over()
    {
        byte[] input = "3\r\nabc\r\n0\r\n\r\nGET /next"u8.ToArray();
        var decoder = new ChunkedDecoder(Http1Limits.Default);
        (string body, int consumed, _) = Decode(decoder, input);
        Assert.Equal("abc", body);
        Assert.Equal(input.Length - "GET /next".Length, consumed);
        Assert.NotNull(decoder.Trailers);
        Assert.Empty(decoder.Trailers);
        Assert.True(decoder.IsCompleted);

        decoder.Reset();
        Assert.Null(decoder.Trailers);
        Assert.Equal("xy", Decode(decoder, "2\r\nxy\r\n0\r\n\r\n"u8.ToArray()).Body);
    }

    [Fact]
    public void Last_chunk_may_have_leading_zeros_and_extensions()
    {
        Assert.Equal("a", DecodeAll("1\r\na\r\n000;end=1\r\n\r\n"u8.ToArray(), Http1Limits.Default, int.MaxValue).Body);
    }

    [Fact]
    public void Big_body_decodes_at_every_segment_size()
    {
        byte[] payload = new byte[70_000];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)(i * 31);
        }

        var encoded = new ArrayBufferWriter<byte>();
        for (int offset = 0; offset < payload.Length; offset += 8192)
        {
            int n = Math.Min(8192, payload.Length - offset);
            ChunkedEncoder.WriteChunkHeader(n, encoded);
            encoded.Write(payload.AsSpan(offset, n));
            ChunkedEncoder.WriteChunkTerminator(encoded);
        }

        ChunkedEncoder.WriteLastChunk(null, encoded);
        // Byte-sized segments are covered by the split-point tests; here 70k one-byte segments would only test the harness.
        foreach (int size in new[] { 7, 100, 4096, int.MaxValue })
        {
            Assert.Equal(payload, DecodeAllBytes(encoded.WrittenSpan.ToArray(), size));
        }
    }

    internal static (string Body, string Trailers) DecodeAll(byte[] input, Http1Limits limits, int chunkSize)
    {
        var decoder = new ChunkedDecoder(limits);
        var body = new List<byte>();
        ReadOnlySequence<byte> all = chunkSize >= input.Length ? new ReadOnlySequence<byte>(input) : SegmentedSequence.Chunked(input, chunkSize);
        long available = Math.Min(chunkSize, input.Length);
        long start = 0;
        while (true)
        {
            ReadOnlySequence<byte> window = all.Slice(start, available - start);
            ChunkedReadResult r = decoder.Read(window, out SequencePosition consumed, out ReadOnlySequence<byte> data);
            start += window.Slice(window.Start, consumed).Length;
            if (r == ChunkedReadResult.Data)
            {
                body.AddRange(data.ToArray());
            }
            else if (r == ChunkedReadResult.Completed)
            {
                var sb = new StringBuilder();
                foreach (HttpHeader h in decoder.Trailers!)
                {
                    sb.Append(h.Name).Append('=').Append(h.Value).Append('\n');
                }

                return (Encoding.Latin1.GetString([.. body]), sb.ToString());
            }
            else
            {
                if (available == input.Length)
                {
                    throw new InvalidOperationException("Decoder wants more after the whole input.");
                }

                available = Math.Min(input.Length, available + chunkSize);
            }
        }
    }

    private static byte[] DecodeAllBytes(byte[] input, int chunkSize) =>
        Encoding.Latin1.GetBytes(DecodeAll(input, Http1Limits.Default, chunkSize).Body);

    private static (string Body, int Consumed, ChunkedReadResult Last) Decode(ChunkedDecoder decoder, byte[] input)
    {
        var buffer = new ReadOnlySequence<byte>(input);
        var body = new StringBuilder();
        long start = 0;
        while (true)
        {
            ReadOnlySequence<byte> rest = buffer.Slice(start);
            ChunkedReadResult r = decoder.Read(rest, out SequencePosition consumed, out ReadOnlySequence<byte> data);
            start += rest.Slice(rest.Start, consumed).Length;
            if (r == ChunkedReadResult.Data)
            {
                body.Append(Encoding.Latin1.GetString(data.ToArray()));
            }
            else
            {
                return (body.ToString(), (int)start, r);
            }
        }
    }
}
