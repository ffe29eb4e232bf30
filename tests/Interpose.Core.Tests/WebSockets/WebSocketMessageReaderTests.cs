using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Interpose.Core.Flows;
using Interpose.Core.Tests.Corpus;
using Interpose.Core.WebSockets;

namespace Interpose.Core.Tests.WebSockets;

/// <summary>Reading WebSocket messages out of relayed bytes (RFC 6455 §5, RFC 7692), however the bytes are split.</summary>
public sealed class WebSocketMessageReaderTests
{
    /// <summary>The content cap the proxy's tap gives its readers (IWebSocketObserver.MaxContentBytes): 1 MiB.</summary>
    private const int TapContentCap = 1024 * 1024;

    [Fact]
    public void A_masked_text_message_fed_one_byte_at_a_time_is_unmasked_whole()
    {
        var bytes = Frame(fin: true, opcode: 1, Encoding.UTF8.GetBytes("hello, world"), mask: 0x37FA213D);
        using var reader = new WebSocketMessageReader(1024, perMessageDeflate: false);
        var messages = new Collector();
        foreach (var b in bytes)
        {
            reader.Read(new ReadOnlySequence<byte>([b]), messages);
        }

        var message = Assert.Single(messages.Messages);
        Assert.Equal(WebSocketOpcode.Text, message.Opcode);
        Assert.Equal("hello, world", Encoding.UTF8.GetString(message.Content));
        Assert.Equal(12, message.Length);
        Assert.Null(reader.Error);
    }

    [Fact]
    public void Fragments_are_joined_and_a_ping_between_them_comes_out_first()
    {
        var bytes = Concat(
            Frame(fin: false, opcode: 2, [1, 2, 3], mask: 0x01020304),
            Frame(fin: true, opcode: 9, Encoding.ASCII.GetBytes("are you there"), mask: 0x0A0B0C0D),
            Frame(fin: false, opcode: 0, [4, 5], mask: 0x11223344),
            Frame(fin: true, opcode: 0, [6], mask: 0x55667788));
        using var reader = new WebSocketMessageReader(1024, perMessageDeflate: false);
        var messages = new Collector();
        reader.Read(SegmentedSequence.Chunked(bytes, 5), messages);

        Assert.Collection(messages.Messages,
            ping => Assert.Equal((WebSocketOpcode.Ping, "are you there"), (ping.Opcode, Encoding.ASCII.GetString(ping.Content))),
            data =>
            {
                Assert.Equal(WebSocketOpcode.Binary, data.Opcode);
                Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6 }, data.Content);
            });
    }

    [Fact]
    public void Sixteen_and_sixty_four_bit_lengths_are_read_and_content_is_kept_up_to_the_cap()
    {
        var medium = new byte[300];
        var large = new byte[70_000];
        Random.Shared.NextBytes(medium);
        Random.Shared.NextBytes(large);
        var bytes = Concat(Frame(fin: true, opcode: 2, medium, mask: null), Frame(fin: true, opcode: 2, large, mask: null));
        using var reader = new WebSocketMessageReader(100, perMessageDeflate: false);
        var messages = new Collector();
        reader.Read(SegmentedSequence.Chunked(bytes, 4096), messages);

        Assert.Equal(2, messages.Messages.Count);
        Assert.Equal(medium.AsSpan(0, 100).ToArray(), messages.Messages[0].Content);
        Assert.Equal(300, messages.Messages[0].Length);
        Assert.Equal(large.AsSpan(0, 100).ToArray(), messages.Messages[1].Content);
        Assert.Equal(70_000, messages.Messages[1].Length);
    }

    [Theory]
    [InlineData(new byte[] { 0x83, 0x00 }, "unknown data opcode 0x3")]
    [InlineData(new byte[] { 0x80, 0x00 }, "a continuation frame with no message in progress")]
    [InlineData(new byte[] { 0x09, 0x00 }, "a fragmented or oversized control frame")]
    [InlineData(new byte[] { 0xC1, 0x00 }, "reserved bits set that no negotiated extension defines")]
    [InlineData(new byte[] { 0x01, 0x01, 0x61, 0x82, 0x00 }, "a new data frame while a fragmented message was in progress")]
    public void Bytes_that_are_not_valid_frames_stop_the_reader_for_good(byte[] bytes, string error)
    {
        using var reader = new WebSocketMessageReader(1024, perMessageDeflate: false);
        var messages = new Collector();
        reader.Read(new ReadOnlySequence<byte>(bytes), messages);
        Assert.Equal(error, reader.Error);

        // A valid frame afterwards is not read: the stream's framing is lost.
        reader.Read(new ReadOnlySequence<byte>(Frame(fin: true, opcode: 1, "x"u8.ToArray(), mask: null)), messages);
        Assert.Empty(messages.Messages);
    }

    [Fact]
    public void Compressed_messages_are_inflated_with_the_window_kept_across_messages()
    {
        // RFC 7692 §7.2.1: each message is the compressor's output up to a sync flush, without its last 4 bytes; the
        // sender keeps its window (context takeover), so the second message refers back to the first.
        string[] texts = ["the quick brown fox jumps over the lazy dog", "the quick brown fox jumps over the lazy dog again"];
        var compressed = new MemoryStream();
        var frames = new List<byte[]>();
        using (var deflate = new DeflateStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            foreach (var text in texts)
            {
                long start = compressed.Length;
                deflate.Write(Encoding.UTF8.GetBytes(text));
                deflate.Flush();
                var payload = compressed.ToArray()[(int)start..^4];
                frames.Add(Frame(fin: true, opcode: 1, payload, mask: null, rsv1: true));
            }
        }

        Assert.True(frames[1].Length < texts[1].Length, "the second message must refer back to the first");
        using var reader = new WebSocketMessageReader(1024, perMessageDeflate: true);
        var messages = new Collector();
        reader.Read(SegmentedSequence.Chunked(Concat([.. frames]), 3), messages);

        Assert.Equal(texts, messages.Messages.Select(m => Encoding.UTF8.GetString(m.Content)));
        Assert.All(messages.Messages, m => Assert.False(m.IsCompressed));
        Assert.Equal(texts[1].Length, messages.Messages[1].Length);
    }

    [Fact]
    public void A_compressed_message_that_is_not_deflate_is_kept_as_it_came()
    {
        var garbage = new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x00 };
        using var reader = new WebSocketMessageReader(1024, perMessageDeflate: true);
        var messages = new Collector();
        reader.Read(new ReadOnlySequence<byte>(Frame(fin: true, opcode: 2, garbage, mask: null, rsv1: true)), messages);

        var message = Assert.Single(messages.Messages);
        Assert.True(message.IsCompressed);
        Assert.Null(reader.Error);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public void Messages_that_each_end_their_deflate_stream_are_each_inflated(int chunk)
    {
        // RFC 7692 §7.2.3.4: a sender may end each message with a block whose BFINAL is 1 (here: a fresh compressor per
        // message, finished), optionally followed by the one octet the RFC's example has. The next message is a new stream.
        string[] texts = ["first message, compressed on its own", "second message, compressed on its own", "third"];
        var frames = texts.Select((text, i) =>
        {
            var compressed = new MemoryStream();
            using (var deflate = new DeflateStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            {
                deflate.Write(Encoding.UTF8.GetBytes(text));
            }

            byte[] payload = i == 1 ? [.. compressed.ToArray(), 0x00] : compressed.ToArray();
            return Frame(fin: true, opcode: 1, payload, mask: i == 2 ? 0x0BADF00D : null, rsv1: true);
        });

        // The RFC's own example: "Hello" in a final block, then 0x00.
        byte[] hello = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        using var reader = new WebSocketMessageReader(1024, perMessageDeflate: true);
        var messages = new Collector();
        reader.Read(SegmentedSequence.Chunked(Concat([.. frames, Frame(fin: true, opcode: 1, hello, mask: null, rsv1: true)]), chunk), messages);

        Assert.Equal([.. texts, "Hello"], messages.Messages.Select(m => Encoding.UTF8.GetString(m.Content)));
        Assert.Equal([.. texts.Select(t => (long)t.Length), 5], messages.Messages.Select(m => m.Length));
        Assert.All(messages.Messages, m => Assert.False(m.IsCompressed));
        Assert.Null(reader.Error);
    }

    [Fact]
    public void Data_after_the_end_of_the_deflate_stream_keeps_the_message_as_it_came()
    {
        // A second stream inside one message: not what RFC 7692 §7.2.3.4 describes, and this reader cannot read it.
        var compressed = new MemoryStream();
        foreach (var text in new[] { "one stream", "another stream" })
        {
            using var deflate = new DeflateStream(compressed, CompressionLevel.Optimal, leaveOpen: true);
            deflate.Write(Encoding.UTF8.GetBytes(text));
        }

        var payload = compressed.ToArray();
        using var reader = new WebSocketMessageReader(1024, perMessageDeflate: true);
        var messages = new Collector();
        reader.Read(SegmentedSequence.Chunked(Frame(fin: true, opcode: 1, payload, mask: null, rsv1: true), 1), messages);

        var message = Assert.Single(messages.Messages);
        Assert.True(message.IsCompressed);
        Assert.Equal(payload, message.Content);
        Assert.Equal(payload.Length, message.Length);
    }

    [Fact]
    public void A_message_that_inflates_past_the_bound_is_kept_compressed_with_its_compressed_length()
    {
        // 65 MiB of zeros: a compression bomb of about 65 KB, sent in 16 KiB frames.
        var compressed = new MemoryStream();
        using (var deflate = new DeflateStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            var zeros = new byte[1024 * 1024];
            for (int i = 0; i < 65; i++)
            {
                deflate.Write(zeros);
            }

            deflate.Flush();
        }

        var payload = compressed.ToArray()[..^4]; // RFC 7692 §7.2.1: the sync flush's 0x00 0x00 0xff 0xff removed
        var frames = payload.Chunk(16 * 1024).Select((part, i) => Frame(fin: i == (payload.Length - 1) / (16 * 1024), opcode: i == 0 ? 2 : 0, part, mask: null, rsv1: i == 0));
        var after = new MemoryStream();
        using (var deflate = new DeflateStream(after, CompressionLevel.Optimal, leaveOpen: true))
        {
            deflate.Write("after"u8);
            deflate.Flush();
        }

        using var reader = new WebSocketMessageReader(TapContentCap, perMessageDeflate: true);
        var messages = new Collector();
        reader.Read(new ReadOnlySequence<byte>(Concat([.. frames, Frame(fin: true, opcode: 1, after.ToArray()[..^4], mask: null, rsv1: true)])), messages);

        Assert.Equal(2, messages.Messages.Count);
        var bomb = messages.Messages[0];
        Assert.True(bomb.IsCompressed);
        Assert.Equal(payload, bomb.Content);
        Assert.Equal(payload.Length, bomb.Length);

        // The window is lost with the message: the direction's later compressed messages are kept as they came.
        Assert.True(messages.Messages[1].IsCompressed);
        Assert.Null(reader.Error);
    }

    private static byte[] Frame(bool fin, int opcode, byte[] payload, uint? mask, bool rsv1 = false)
    {
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode) };
        byte maskBit = mask is null ? (byte)0 : (byte)0x80;
        if (payload.Length < 126)
        {
            frame.Add((byte)(maskBit | payload.Length));
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            frame.Add((byte)(maskBit | 126));
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }
        else
        {
            frame.Add((byte)(maskBit | 127));
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            frame.AddRange(length);
        }

        if (mask is { } key)
        {
            var keyBytes = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(keyBytes, key);
            frame.AddRange(keyBytes);
            frame.AddRange(payload.Select((b, i) => (byte)(b ^ keyBytes[i % 4])));
        }
        else
        {
            frame.AddRange(payload);
        }

        return [.. frame];
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private sealed class Collector : IWebSocketMessageHandler
    {
        public List<WebSocketReadMessage> Messages { get; } = [];

        public void OnMessage(in WebSocketReadMessage message) => Messages.Add(message);
    }
}
