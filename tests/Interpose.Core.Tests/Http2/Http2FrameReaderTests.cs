using System.Buffers;
using Interpose.Core.Http2;
using Interpose.Core.Tests.Corpus;
using static Interpose.Core.Tests.Http2.Http2TestData;

namespace Interpose.Core.Tests.Http2;

public class Http2FrameReaderTests
{
    // One frame of every type, valid, with the summary the reader must produce (RFC 9113 §6).
    public static TheoryData<string, byte[], string> ValidFrames => new()
    {
        { "DATA", Frame(0x0, 0x0, 1, Hex("68656c6c6f")), "Data/00/s1/len5/p=68656c6c6f/pad0" },
        { "DATA END_STREAM", Frame(0x0, 0x1, 3, []), "Data/01/s3/len0/p=/pad0" },
        { "DATA padded", Frame(0x0, 0x8, 1, Hex("02 6869 0000")), "Data/08/s1/len5/p=6869/pad2" },
        { "DATA padded, no data", Frame(0x0, 0x8, 1, Hex("00")), "Data/08/s1/len1/p=/pad0" },
        { "DATA padding fills all but the pad length octet", Frame(0x0, 0x8, 1, Hex("02 0000")), "Data/08/s1/len3/p=/pad2" },
        { "HEADERS", Frame(0x1, 0x5, 1, Hex("8286")), "Headers/05/s1/len2/p=8286/pad0" },
        { "HEADERS padded + priority", Frame(0x1, 0x2c, 5, Hex("01 80000003 0f 82 00")), "Headers/2c/s5/len8/p=82/pad1/dep=3/excl=True/w=16" },
        { "HEADERS depending on itself is returned, its block still to decode (§5.3.1, §4.3)", Frame(0x1, 0x24, 3, Hex("00000003 10 82")), "Headers/24/s3/len6/p=82/pad0/dep=3/excl=False/w=17" },
        { "PRIORITY", Frame(0x2, 0x0, 5, Hex("00000003 ff")), "Priority/00/s5/len5/p=00000003ff/pad0/dep=3/excl=False/w=256" },
        { "RST_STREAM CANCEL", Frame(0x3, 0x0, 1, Hex("00000008")), "RstStream/00/s1/len4/p=00000008/pad0/code=Cancel" },
        { "RST_STREAM unknown code", Frame(0x3, 0x0, 1, Hex("000000ff")), "RstStream/00/s1/len4/p=000000ff/pad0/code=255" },
        { "SETTINGS", Frame(0x4, 0x0, 0, Hex("0003 00000064 0004 00010000 00ff 00000001")), "Settings/00/s0/len18/p=00030000006400040001000000ff00000001/pad0/MaxConcurrentStreams=100/InitialWindowSize=65536/255=1" },
        { "SETTINGS ACK", Frame(0x4, 0x1, 0, []), "Settings/01/s0/len0/p=/pad0" },
        { "PUSH_PROMISE", Frame(0x5, 0x4, 1, Hex("00000002 8286")), "PushPromise/04/s1/len6/p=8286/pad0/promised=2" },
        { "PING", Frame(0x6, 0x0, 0, Hex("0102030405060708")), "Ping/00/s0/len8/p=0102030405060708/pad0/ping=0102030405060708" },
        { "PING ACK", Frame(0x6, 0x1, 0, Hex("0000000000000000")), "Ping/01/s0/len8/p=0000000000000000/pad0/ping=0000000000000000" },
        { "GOAWAY with debug data", Frame(0x7, 0x0, 0, Hex("80000007 0000000b 6869")), "GoAway/00/s0/len10/p=6869/pad0/last=7/code=EnhanceYourCalm" },
        { "WINDOW_UPDATE connection", Frame(0x8, 0x0, 0, Hex("7fffffff")), "WindowUpdate/00/s0/len4/p=7fffffff/pad0/inc=2147483647" },
        { "WINDOW_UPDATE stream, reserved bit", Frame(0x8, 0x0, 1, Hex("80000001")), "WindowUpdate/00/s1/len4/p=80000001/pad0/inc=1" },
        { "CONTINUATION", Frame(0x9, 0x4, 1, Hex("84")), "Continuation/04/s1/len1/p=84/pad0" },
        { "unknown type is returned for the caller to ignore", Frame(0x42, 0xff, 9, Hex("aa")), "66/ff/s9/len1/p=aa/pad0" },
        { "reserved stream-id bit ignored", Frame(0x0, 0x0, 0x80000001, Hex("00")), "Data/00/s1/len1/p=00/pad0" },
    };

    // Invalid frames: the error kind and code RFC 9113 assigns.
    public static TheoryData<string, byte[], bool, Http2ErrorCode> InvalidFrames => new()
    {
        { "DATA on stream 0 (§6.1)", Frame(0x0, 0x0, 0, Hex("00")), true, Http2ErrorCode.ProtocolError },
        { "DATA padding = payload length (§6.1)", Frame(0x0, 0x8, 1, Hex("03 0000")), true, Http2ErrorCode.ProtocolError },
        { "DATA padding > payload (§6.1)", Frame(0x0, 0x8, 1, Hex("05 00")), true, Http2ErrorCode.ProtocolError },
        { "DATA padded without pad length (§4.2)", Frame(0x0, 0x8, 1, []), true, Http2ErrorCode.FrameSizeError },
        { "HEADERS on stream 0 (§6.2)", Frame(0x1, 0x4, 0, Hex("82")), true, Http2ErrorCode.ProtocolError },
        { "HEADERS priority flag, too short (§4.2)", Frame(0x1, 0x24, 1, Hex("00000000")), true, Http2ErrorCode.FrameSizeError },
        { "HEADERS padding eats the priority fields (§6.2)", Frame(0x1, 0x2c, 1, Hex("05 00000000 10")), true, Http2ErrorCode.ProtocolError },
        { "PRIORITY on stream 0 (§6.3)", Frame(0x2, 0x0, 0, Hex("00000001 10")), true, Http2ErrorCode.ProtocolError },
        { "PRIORITY of 4 octets (§6.3: stream error)", Frame(0x2, 0x0, 1, Hex("00000003")), false, Http2ErrorCode.FrameSizeError },
        { "PRIORITY of 6 octets (§6.3: stream error)", Frame(0x2, 0x0, 1, Hex("00000003 1000")), false, Http2ErrorCode.FrameSizeError },
        { "PRIORITY depends on itself (§5.3.1)", Frame(0x2, 0x0, 1, Hex("00000001 10")), false, Http2ErrorCode.ProtocolError },
        { "RST_STREAM on stream 0 (§6.4)", Frame(0x3, 0x0, 0, Hex("00000008")), true, Http2ErrorCode.ProtocolError },
        { "RST_STREAM of 3 octets (§6.4)", Frame(0x3, 0x0, 1, Hex("000008")), true, Http2ErrorCode.FrameSizeError },
        { "RST_STREAM of 5 octets (§6.4)", Frame(0x3, 0x0, 1, Hex("0000000800")), true, Http2ErrorCode.FrameSizeError },
        { "SETTINGS on a stream (§6.5)", Frame(0x4, 0x0, 1, []), true, Http2ErrorCode.ProtocolError },
        { "SETTINGS ACK with payload (§6.5)", Frame(0x4, 0x1, 0, Hex("0003 00000064")), true, Http2ErrorCode.FrameSizeError },
        { "SETTINGS of 5 octets (§6.5)", Frame(0x4, 0x0, 0, Hex("0003 000000")), true, Http2ErrorCode.FrameSizeError },
        { "SETTINGS ENABLE_PUSH = 2 (§6.5.2)", Frame(0x4, 0x0, 0, Hex("0002 00000002")), true, Http2ErrorCode.ProtocolError },
        { "SETTINGS INITIAL_WINDOW_SIZE = 2^31 (§6.5.2)", Frame(0x4, 0x0, 0, Hex("0004 80000000")), true, Http2ErrorCode.FlowControlError },
        { "SETTINGS MAX_FRAME_SIZE = 16383 (§6.5.2)", Frame(0x4, 0x0, 0, Hex("0005 00003fff")), true, Http2ErrorCode.ProtocolError },
        { "SETTINGS MAX_FRAME_SIZE = 2^24 (§6.5.2)", Frame(0x4, 0x0, 0, Hex("0005 01000000")), true, Http2ErrorCode.ProtocolError },
        { "PUSH_PROMISE on stream 0 (§6.6)", Frame(0x5, 0x4, 0, Hex("00000002")), true, Http2ErrorCode.ProtocolError },
        { "PUSH_PROMISE too short (§4.2)", Frame(0x5, 0x4, 1, Hex("000002")), true, Http2ErrorCode.FrameSizeError },
        { "PING on a stream (§6.7)", Frame(0x6, 0x0, 1, Hex("0000000000000000")), true, Http2ErrorCode.ProtocolError },
        { "PING of 7 octets (§6.7)", Frame(0x6, 0x0, 0, Hex("00000000000000")), true, Http2ErrorCode.FrameSizeError },
        { "PING of 9 octets (§6.7)", Frame(0x6, 0x0, 0, Hex("000000000000000000")), true, Http2ErrorCode.FrameSizeError },
        { "GOAWAY on a stream (§6.8)", Frame(0x7, 0x0, 1, Hex("00000000 00000000")), true, Http2ErrorCode.ProtocolError },
        { "GOAWAY of 7 octets (§6.8)", Frame(0x7, 0x0, 0, Hex("00000000 000000")), true, Http2ErrorCode.FrameSizeError },
        { "WINDOW_UPDATE of 3 octets (§6.9)", Frame(0x8, 0x0, 1, Hex("000001")), true, Http2ErrorCode.FrameSizeError },
        { "WINDOW_UPDATE of 5 octets (§6.9)", Frame(0x8, 0x0, 0, Hex("0000000100")), true, Http2ErrorCode.FrameSizeError },
        { "WINDOW_UPDATE 0 on the connection (§6.9)", Frame(0x8, 0x0, 0, Hex("00000000")), true, Http2ErrorCode.ProtocolError },
        { "WINDOW_UPDATE 0 on a stream (§6.9: stream error)", Frame(0x8, 0x0, 1, Hex("80000000")), false, Http2ErrorCode.ProtocolError },
        { "CONTINUATION on stream 0 (§6.10)", Frame(0x9, 0x4, 0, Hex("82")), true, Http2ErrorCode.ProtocolError },
    };

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void Valid_frame_is_read_and_consumed(string name, byte[] bytes, string expected)
    {
        _ = name;
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.True(Http2FrameReader.TryReadFrame(ref buffer, 16384, out Http2Frame frame));
        Assert.Equal(expected, Describe(frame));
        Assert.Equal(0, buffer.Length);
    }

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void Every_prefix_of_a_valid_frame_needs_more_data_and_consumes_nothing(string name, byte[] bytes, string expected)
    {
        _ = name;
        _ = expected;
        for (int n = 0; n < bytes.Length; n++)
        {
            var buffer = new ReadOnlySequence<byte>(bytes, 0, n);
            Assert.False(Http2FrameReader.TryReadFrame(ref buffer, 16384, out _));
            Assert.Equal(n, buffer.Length);
        }
    }

    [Theory]
    [MemberData(nameof(InvalidFrames))]
    public void Invalid_frame_is_rejected_with_the_rfc_error(string name, byte[] bytes, bool connectionError, Http2ErrorCode code)
    {
        _ = name;
        var buffer = new ReadOnlySequence<byte>(bytes);
        Exception e = Assert.ThrowsAny<Exception>(() => Http2FrameReader.TryReadFrame(ref buffer, 16384, out _));
        if (connectionError)
        {
            Assert.Equal(code, Assert.IsType<Http2ConnectionException>(e).ErrorCode);
        }
        else
        {
            var stream = Assert.IsType<Http2StreamException>(e);
            Assert.Equal(code, stream.ErrorCode);
            Assert.Equal((int)(FrameHeader.Read(bytes).StreamId), stream.StreamId);
        }
    }

    [Fact]
    public void Oversized_frame_is_rejected_from_its_header_alone()
    {
        // RFC 9113 §4.2: length above SETTINGS_MAX_FRAME_SIZE → FRAME_SIZE_ERROR. Only the 9 header octets are present:
        // the reader must not wait for (and make the caller buffer) the 16 KiB payload first.
        byte[] header = Frame(0x0, 0x0, 1, [], length: 16385);
        var buffer = new ReadOnlySequence<byte>(header);
        var e = Assert.Throws<Http2ConnectionException>(() => Http2FrameReader.TryReadFrame(ref buffer, 16384, out _));
        Assert.Equal(Http2ErrorCode.FrameSizeError, e.ErrorCode);
    }

    [Fact]
    public void Frame_at_the_advertised_max_size_is_accepted_and_a_larger_setting_raises_the_limit()
    {
        byte[] exact = Frame(0x0, 0x0, 1, new byte[16384]);
        var buffer = new ReadOnlySequence<byte>(exact);
        Assert.True(Http2FrameReader.TryReadFrame(ref buffer, 16384, out Http2Frame frame));
        Assert.Equal(16384, frame.Payload.Length);

        byte[] larger = Frame(0x0, 0x0, 1, new byte[20000]);
        buffer = new ReadOnlySequence<byte>(larger);
        Assert.True(Http2FrameReader.TryReadFrame(ref buffer, 32768, out frame));
        Assert.Equal(20000, frame.Payload.Length);
    }

    [Fact]
    public void A_headers_frame_that_depends_on_itself_says_so_and_keeps_its_block()
    {
        // RFC 9113 §5.3.1 makes it a stream error, but §4.3 needs its block decoded: the caller resets after decoding.
        var buffer = new ReadOnlySequence<byte>(Frame(0x1, 0x24, 3, Hex("00000003 10 82")));
        Assert.True(Http2FrameReader.TryReadFrame(ref buffer, 16384, out Http2Frame frame));
        Assert.True(frame.DependsOnItself);
        Assert.Equal(Hex("82"), frame.Payload.ToArray());

        buffer = new ReadOnlySequence<byte>(Frame(0x1, 0x24, 3, Hex("00000001 10 82")));
        Assert.True(Http2FrameReader.TryReadFrame(ref buffer, 16384, out frame));
        Assert.False(frame.DependsOnItself);
    }

    [Fact]
    public void Stream_error_consumes_the_frame_so_the_connection_can_read_on()
    {
        byte[] bytes = Concat(Frame(0x2, 0x0, 1, Hex("00000003")), Frame(0x6, 0x0, 0, Hex("0102030405060708")));
        var buffer = new ReadOnlySequence<byte>(bytes);
        ReadOnlySequence<byte> local = buffer;
        Assert.Throws<Http2StreamException>(() => Http2FrameReader.TryReadFrame(ref local, 16384, out _));

        // The ref argument was advanced before the throw.
        buffer = buffer.Slice(13);
        Assert.True(Http2FrameReader.TryReadFrame(ref buffer, 16384, out Http2Frame ping));
        Assert.Equal(FrameType.Ping, ping.Type);
    }

    [Fact]
    public void Rejects_a_max_frame_size_outside_the_rfc_range()
    {
        var buffer = ReadOnlySequence<byte>.Empty;
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameReader.TryReadFrame(ref buffer, 16383, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameReader.TryReadFrame(ref buffer, 16_777_216, out _));
    }

    private static byte[] Conversation() => Concat([.. ValidFrames.Select(row => (byte[])row[1])]);

    [Fact]
    public void A_frame_sequence_reads_the_same_at_every_split_point()
    {
        // SplitPointTests' property for HTTP/2: whatever the segment boundaries, the same frames come out.
        byte[] all = Conversation();
        List<string> whole = ReadAll(new ReadOnlySequence<byte>(all));
        Assert.Equal(ValidFrames.Count, whole.Count);
        for (int split = 1; split < all.Length; split++)
        {
            Assert.Equal(whole, ReadAll(SegmentedSequence.Create(all[..split], all[split..])));
        }

        Assert.Equal(whole, ReadAll(SegmentedSequence.Chunked(all, 1)));
        Assert.Equal(whole, ReadAll(SegmentedSequence.Chunked(all, 7)));
    }

    [Fact]
    public void A_frame_sequence_reads_the_same_when_bytes_arrive_one_at_a_time()
    {
        // A pipe: the reader sees the unread rest plus one new byte each time, and never consumes a partial frame.
        byte[] all = Conversation();
        List<string> whole = ReadAll(new ReadOnlySequence<byte>(all));
        var seen = new List<string>();
        int consumed = 0;
        for (int available = 1; available <= all.Length; available++)
        {
            var buffer = new ReadOnlySequence<byte>(all, consumed, available - consumed);
            while (Http2FrameReader.TryReadFrame(ref buffer, 16384, out Http2Frame frame))
            {
                seen.Add(Describe(frame));
            }

            consumed = available - (int)buffer.Length;
        }

        Assert.Equal(whole, seen);
        Assert.Equal(all.Length, consumed);
    }

    [Fact]
    public void Frame_header_round_trips_and_masks_the_reserved_bit()
    {
        var header = new FrameHeader(0x123456, FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.EndStream, 0x7fffffff);
        var bytes = new byte[9];
        header.WriteTo(bytes);
        Assert.Equal("1234560105" + "7fffffff", ToHex(bytes));
        Assert.Equal(header, FrameHeader.Read(bytes));
        bytes[5] |= 0x80;
        Assert.Equal(0x7fffffff, FrameHeader.Read(bytes).StreamId);
    }

    [Fact]
    public void Client_preface_matches_incrementally()
    {
        byte[] preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
        Assert.Equal(Http2Preface.Length, preface.Length);
        Assert.Equal(PrefaceMatch.Complete, Http2Preface.Match(preface));
        Assert.Equal(PrefaceMatch.Complete, Http2Preface.Match(Concat(preface, Frame(0x4, 0, 0, []))));
        for (int n = 0; n < preface.Length; n++)
        {
            Assert.Equal(PrefaceMatch.Incomplete, Http2Preface.Match(preface.AsSpan(0, n)));
        }

        Assert.Equal(PrefaceMatch.Mismatch, Http2Preface.Match("GET / HTTP/1.1\r\n"u8));
        Assert.Equal(PrefaceMatch.Mismatch, Http2Preface.Match("PRI * HTTP/2.1"u8));
    }
}
