using System.Buffers;
using Interpose.Core.Http;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>A frame-level HTTP/2 client for the attack tests: writes frames with Core's writer, reads the proxy's
/// frames with Core's reader; every read bounded by <see cref="BoundedRead.Limit"/>.</summary>
internal sealed class H2RawClient(Stream stream) : IAsyncDisposable
{
    private readonly ArrayBufferWriter<byte> _out = new();
    private readonly HpackEncoder _encoder = new();
    private byte[] _in = new byte[64 * 1024];
    private int _have;

    /// <summary>A CONNECT tunnel to host:port through the proxy, plain inside, with the preface and a SETTINGS sent.</summary>
    /// <remarks>The proxy's SETTINGS are not acknowledged until <see cref="SettledAsync"/>: a client whose connection the
    /// proxy is about to close must not write more than the test does (a write to a closed socket resets the
    /// connection, and the reset can discard the proxy's last frames before they are read).</remarks>
    public static async Task<H2RawClient> ConnectAsync(TestProxy proxy, string host, int port, params Http2Setting[] settings)
    {
        var stream = await RawClient.TunnelAsync(proxy, host, port, tls: false);
        var client = new H2RawClient(stream);
        await stream.WriteAsync(Http2Preface.ClientPreface.ToArray());
        Http2FrameWriter.WriteSettings(client._out, settings);
        await client.FlushAsync();
        return client;
    }

    /// <summary>
    /// Reads the proxy's SETTINGS and acknowledges them (RFC 9113 §6.5.3), then round-trips a PING: frames are handled
    /// in order, so once the PING is answered the proxy has seen the acknowledgement (no SETTINGS_TIMEOUT can fire).
    /// </summary>
    public async Task SettledAsync()
    {
        Assert.NotNull(await ReadUntilAsync(f => f.Type == FrameType.Settings && (f.Flags & FrameFlags.Ack) == 0));
        Http2FrameWriter.WriteSettingsAck(_out);
        Ping(0x5E771ED);
        await FlushAsync();
        Assert.NotNull(await ReadUntilAsync(f => f.Type == FrameType.Ping));
    }

    public void Headers(int streamId, string method, string path, bool endStream, params (string Name, string Value)[] extra)
    {
        var block = new ArrayBufferWriter<byte>();
        var fields = new List<HttpHeader> { new(":method", method), new(":scheme", "http"), new(":authority", "localhost"), new(":path", path) };
        fields.AddRange(extra.Select(e => new HttpHeader(e.Name, e.Value)));
        _encoder.EncodeBlock(fields, block);
        Http2FrameWriter.WriteHeaders(_out, streamId, block.WrittenSpan, endStream, Http2Settings.DefaultMaxFrameSize);
    }

    /// <summary>A trailer section: HEADERS with END_STREAM and no pseudo-field (RFC 9113 §8.1).</summary>
    public void Trailers(int streamId, params (string Name, string Value)[] fields)
    {
        var block = new ArrayBufferWriter<byte>();
        _encoder.EncodeBlock(fields.Select(f => new HttpHeader(f.Name, f.Value)), block);
        Http2FrameWriter.WriteHeaders(_out, streamId, block.WrittenSpan, endStream: true, Http2Settings.DefaultMaxFrameSize);
    }

    /// <summary>A request head as <see cref="Headers"/> writes it, in a HEADERS frame with the PRIORITY flag and its
    /// five octets (RFC 9113 §6.2): exclusive bit clear, <paramref name="dependency"/>, weight 16.</summary>
    public void HeadersWithPriority(int streamId, int dependency, string method, string path, bool endStream, params (string Name, string Value)[] extra)
    {
        var block = new ArrayBufferWriter<byte>();
        var fields = new List<HttpHeader> { new(":method", method), new(":scheme", "http"), new(":authority", "localhost"), new(":path", path) };
        fields.AddRange(extra.Select(e => new HttpHeader(e.Name, e.Value)));
        _encoder.EncodeBlock(fields, block);
        var payload = new byte[5 + block.WrittenCount];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(payload, dependency);
        payload[4] = 15; // weight 16, sent as weight - 1
        block.WrittenSpan.CopyTo(payload.AsSpan(5));
        RawFrame(FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.Priority | (endStream ? FrameFlags.EndStream : FrameFlags.None), streamId, payload);
    }

    public void RawFrame(FrameType type, FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        var span = _out.GetSpan(FrameHeader.Size + payload.Length);
        new FrameHeader(payload.Length, type, flags, streamId).WriteTo(span);
        payload.CopyTo(span[FrameHeader.Size..]);
        _out.Advance(FrameHeader.Size + payload.Length);
    }

    public void Data(int streamId, byte[] data, bool endStream) => Http2FrameWriter.WriteData(_out, streamId, data, endStream);

    public void Rst(int streamId) => Http2FrameWriter.WriteRstStream(_out, streamId, Http2ErrorCode.Cancel);

    public void Ping(ulong data) => Http2FrameWriter.WritePing(_out, data, ack: false);

    public async Task FlushAsync()
    {
        await stream.WriteAsync(_out.WrittenMemory);
        _out.ResetWrittenCount();
    }

    /// <summary>The next frame from the proxy (type, flags, stream, error code or argument); null when it closed.</summary>
    public async Task<ReceivedFrame?> ReadFrameAsync()
    {
        while (true)
        {
            var buffer = new ReadOnlySequence<byte>(_in, 0, _have);
            if (Http2FrameReader.TryReadFrame(ref buffer, Http2Settings.MaxAllowedFrameSize, out var frame))
            {
                var received = new ReceivedFrame(frame.Type, frame.Flags, frame.StreamId, frame.ErrorCode, frame.Payload.ToArray(), frame.LastStreamId);
                var consumed = _have - (int)buffer.Length;
                Buffer.BlockCopy(_in, consumed, _in, 0, _have - consumed);
                _have -= consumed;
                return received;
            }

            if (_have == _in.Length)
            {
                Array.Resize(ref _in, _in.Length * 2);
            }

            int n;
            try
            {
                n = await stream.ReadBoundedAsync(_in.AsMemory(_have));
            }
            catch (IOException)
            {
                return null;
            }

            if (n == 0)
            {
                return null;
            }

            _have += n;
        }
    }

    /// <summary>Reads until a frame matches; null if the connection closed first.</summary>
    public async Task<ReceivedFrame?> ReadUntilAsync(Func<ReceivedFrame, bool> match)
    {
        while (await ReadFrameAsync() is { } frame)
        {
            if (match(frame))
            {
                return frame;
            }
        }

        return null;
    }

    /// <summary>Reads frames until one matches, that one included; the connection closing first fails the test.</summary>
    public async Task<List<ReceivedFrame>> CollectUntilAsync(Func<ReceivedFrame, bool> match)
    {
        var frames = new List<ReceivedFrame>();
        while (await ReadFrameAsync() is { } frame)
        {
            frames.Add(frame);
            if (match(frame))
            {
                return frames;
            }
        }

        Assert.Fail("the proxy closed the connection before the awaited frame");
        return frames;
    }

    /// <summary>The fields of a HEADERS frame the proxy sent (its encoder indexes nothing, so a block decodes alone).</summary>
    public static List<HttpHeader> DecodeFields(ReceivedFrame headers)
    {
        var fields = new FieldList();
        new HpackDecoder().Decode(headers.Payload, endHeaders: true, fields);
        return fields.Fields;
    }

    public ValueTask DisposeAsync() => stream.DisposeAsync();

    private sealed class FieldList : IHeaderFieldHandler
    {
        public List<HttpHeader> Fields { get; } = [];

        public void OnHeaderField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed) =>
            Fields.Add(new HttpHeader(System.Text.Encoding.ASCII.GetString(name), System.Text.Encoding.ASCII.GetString(value)));
    }
}

internal sealed record ReceivedFrame(FrameType Type, FrameFlags Flags, int StreamId, Http2ErrorCode ErrorCode, byte[] Payload, int LastStreamId);
