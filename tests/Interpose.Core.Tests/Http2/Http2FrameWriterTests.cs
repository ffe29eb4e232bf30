using System.Buffers;
using Interpose.Core.Http2;
using static Interpose.Core.Tests.Http2.Http2TestData;

namespace Interpose.Core.Tests.Http2;

public class Http2FrameWriterTests
{
    private static string Write(Action<IBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>();
        write(output);
        return ToHex(output.WrittenSpan);
    }

    [Fact]
    public void Writes_each_frame_type_byte_for_byte()
    {
        Assert.Equal("000005" + "00" + "01" + "00000003" + "68656c6c6f", Write(o => Http2FrameWriter.WriteData(o, 3, "hello"u8, endStream: true)));
        Assert.Equal("000000" + "00" + "00" + "00000001", Write(o => Http2FrameWriter.WriteData(o, 1, [], endStream: false)));
        Assert.Equal("00000c" + "04" + "00" + "00000000" + "000200000000" + "000400040000",
            Write(o => Http2FrameWriter.WriteSettings(o, [new(SettingsParameter.EnablePush, 0), new(SettingsParameter.InitialWindowSize, 262144)])));
        Assert.Equal("000000" + "04" + "01" + "00000000", Write(Http2FrameWriter.WriteSettingsAck));
        Assert.Equal("000008" + "06" + "00" + "00000000" + "0102030405060708", Write(o => Http2FrameWriter.WritePing(o, 0x0102030405060708, ack: false)));
        Assert.Equal("000008" + "06" + "01" + "00000000" + "ffffffffffffffff", Write(o => Http2FrameWriter.WritePing(o, ulong.MaxValue, ack: true)));
        Assert.Equal("000004" + "08" + "00" + "00000005" + "7fffffff", Write(o => Http2FrameWriter.WriteWindowUpdate(o, 5, int.MaxValue)));
        Assert.Equal("000004" + "08" + "00" + "00000000" + "000f0000", Write(o => Http2FrameWriter.WriteWindowUpdate(o, 0, 983040)));
        Assert.Equal("000004" + "03" + "00" + "00000007" + "00000008", Write(o => Http2FrameWriter.WriteRstStream(o, 7, Http2ErrorCode.Cancel)));
        Assert.Equal("000004" + "03" + "00" + "00000001" + "00000002", Write(o => Http2FrameWriter.WriteRstStream(o, 1, Http2ErrorCode.InternalError)));
        Assert.Equal("00000a" + "07" + "00" + "00000000" + "7fffffff" + "00000000" + "6869",
            Write(o => Http2FrameWriter.WriteGoAway(o, int.MaxValue, Http2ErrorCode.NoError, "hi"u8)));
        Assert.Equal("000008" + "07" + "00" + "00000000" + "00000003" + "0000000b",
            Write(o => Http2FrameWriter.WriteGoAway(o, 3, Http2ErrorCode.EnhanceYourCalm, [])));
    }

    [Fact]
    public void Error_codes_have_the_rfc_9113_section_7_values()
    {
        // The YARP bug the reference warns about: INTERNAL_ERROR and CANCEL swapped.
        Assert.Equal(0x0u, (uint)Http2ErrorCode.NoError);
        Assert.Equal(0x1u, (uint)Http2ErrorCode.ProtocolError);
        Assert.Equal(0x2u, (uint)Http2ErrorCode.InternalError);
        Assert.Equal(0x3u, (uint)Http2ErrorCode.FlowControlError);
        Assert.Equal(0x4u, (uint)Http2ErrorCode.SettingsTimeout);
        Assert.Equal(0x5u, (uint)Http2ErrorCode.StreamClosed);
        Assert.Equal(0x6u, (uint)Http2ErrorCode.FrameSizeError);
        Assert.Equal(0x7u, (uint)Http2ErrorCode.RefusedStream);
        Assert.Equal(0x8u, (uint)Http2ErrorCode.Cancel);
        Assert.Equal(0x9u, (uint)Http2ErrorCode.CompressionError);
        Assert.Equal(0xau, (uint)Http2ErrorCode.ConnectError);
        Assert.Equal(0xbu, (uint)Http2ErrorCode.EnhanceYourCalm);
        Assert.Equal(0xcu, (uint)Http2ErrorCode.InadequateSecurity);
        Assert.Equal(0xdu, (uint)Http2ErrorCode.Http11Required);
    }

    [Fact]
    public void Small_header_block_is_one_headers_frame_with_end_headers()
    {
        Assert.Equal("000002" + "01" + "05" + "00000001" + "8286", Write(o => Http2FrameWriter.WriteHeaders(o, 1, Hex("8286"), endStream: true, 16384)));
        Assert.Equal("000000" + "01" + "04" + "00000003", Write(o => Http2FrameWriter.WriteHeaders(o, 3, [], endStream: false, 16384)));
    }

    [Theory]
    [InlineData(16384, 16384, new[] { 16384 })]
    [InlineData(16385, 16384, new[] { 16384, 1 })]
    [InlineData(40000, 16384, new[] { 16384, 16384, 7232 })]
    [InlineData(40000, 20000, new[] { 20000, 20000 })]
    public void Large_header_block_is_split_into_continuation_frames(int blockSize, int maxFrameSize, int[] frameSizes)
    {
        byte[] block = new byte[blockSize];
        new Random(blockSize).NextBytes(block);
        var output = new ArrayBufferWriter<byte>();
        Http2FrameWriter.WriteHeaders(output, 5, block, endStream: true, maxFrameSize);

        var buffer = new ReadOnlySequence<byte>(output.WrittenMemory);
        var tracker = new Http2HeaderBlockTracker(maxFieldBlockSize: 1 << 20);
        var reassembled = new List<byte>();
        for (int i = 0; i < frameSizes.Length; i++)
        {
            Assert.True(Http2FrameReader.TryReadFrame(ref buffer, maxFrameSize, out Http2Frame frame));
            Assert.Equal(i == 0 ? FrameType.Headers : FrameType.Continuation, frame.Type);
            Assert.Equal(5, frame.StreamId);
            Assert.Equal(frameSizes[i], frame.Header.Length);

            // RFC 9113 §6.2/§6.10: END_STREAM on HEADERS only, END_HEADERS on the last frame only.
            Assert.Equal(i == 0, frame.Header.HasFlag(FrameFlags.EndStream));
            Assert.Equal(i == frameSizes.Length - 1, frame.EndHeaders);
            Assert.Equal(i == frameSizes.Length - 1, tracker.OnFrame(frame));
            reassembled.AddRange(frame.Payload.ToArray());
        }

        Assert.Equal(0, buffer.Length);
        Assert.Equal(block, reassembled);
    }

    [Fact]
    public void Written_frames_read_back_the_same()
    {
        var output = new ArrayBufferWriter<byte>();
        Http2FrameWriter.WriteSettings(output, [new(SettingsParameter.MaxConcurrentStreams, 100), new(SettingsParameter.MaxFrameSize, 16_777_215)]);
        Http2FrameWriter.WriteData(output, 9, "x"u8, endStream: false);
        Http2FrameWriter.WritePing(output, 42, ack: true);
        Http2FrameWriter.WriteGoAway(output, 9, Http2ErrorCode.ProtocolError, "why"u8);
        List<string> frames = ReadAll(new ReadOnlySequence<byte>(output.WrittenMemory));
        Assert.Equal(
            [
                "Settings/00/s0/len12/p=00030000006400050" + "0ffffff/pad0/MaxConcurrentStreams=100/MaxFrameSize=16777215",
                "Data/00/s9/len1/p=78/pad0",
                "Ping/01/s0/len8/p=000000000000002a/pad0/ping=000000000000002a",
                "GoAway/00/s0/len11/p=776879/pad0/last=9/code=ProtocolError",
            ],
            frames);
    }

    [Fact]
    public void Writer_refuses_invalid_arguments()
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteData(output, 0, [], false));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteRstStream(output, 0, Http2ErrorCode.Cancel));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteWindowUpdate(output, 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteHeaders(output, 1, [], false, 100));
        Assert.Throws<Http2ConnectionException>(() => Http2FrameWriter.WriteSettings(output, [new(SettingsParameter.EnablePush, 2)]));
        Assert.Equal(0, output.WrittenCount);
    }
}
