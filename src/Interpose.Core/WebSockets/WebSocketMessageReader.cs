using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using Interpose.Core.Flows;

namespace Interpose.Core.WebSockets;

/// <summary>A complete WebSocket message read from one direction of a relayed connection.</summary>
/// <param name="Opcode">Its kind.</param>
/// <param name="Content">The payload's first bytes, up to the reader's cap (a new array the receiver may keep).</param>
/// <param name="Length">The payload's whole length (as it came when <paramref name="IsCompressed"/>).</param>
/// <param name="IsCompressed">True when the payload is still compressed: permessage-deflate that could not be decoded or
/// inflated past <see cref="WebSocketMessageReader.MaxInflatedMessageBytes"/>; then content and length are the
/// compressed payload's.</param>
internal readonly record struct WebSocketReadMessage(WebSocketOpcode Opcode, byte[] Content, long Length, bool IsCompressed);

/// <summary>
/// Reads WebSocket messages out of the bytes of one direction as they are relayed (RFC 6455 §5): an incremental frame
/// parser that unmasks payloads, joins fragments and, with permessage-deflate (RFC 7692), decompresses. It only reads:
/// the relay forwards the bytes it was given unchanged whatever this reader makes of them. At the first byte that is
/// not a valid frame it stops for good (<see cref="Error"/>); the relay goes on.
/// </summary>
internal sealed class WebSocketMessageReader : IDisposable
{
    /// <summary>RFC 6455 §5.5: control frames carry at most 125 bytes of payload.</summary>
    private const int MaxControlPayload = 125;

    /// <summary>A frame header is at most 14 bytes: 2, then an 8-byte extended length, then a 4-byte mask key (§5.2).</summary>
    private const int MaxHeaderBytes = 14;

    /// <summary>
    /// How many decompressed bytes one message may inflate to before the reader stops decompressing that direction
    /// (that message and later compressed ones are kept compressed): a bound on the work a compression bomb can cause
    /// when messages are observed. 64 MiB, the same order as the largest message browsers and Kestrel accept by default.
    /// </summary>
    internal const long MaxInflatedMessageBytes = 64L * 1024 * 1024;

    /// <summary>RFC 7692 §7.2.2: the four octets removed from the end of each compressed message, put back to inflate it.</summary>
    private static readonly byte[] DeflateTail = [0x00, 0x00, 0xff, 0xff];

    /// <summary>
    /// RFC 7692 §7.2.3.4: a message may end its DEFLATE stream with a block whose BFINAL is 1, followed by one octet
    /// (an empty stored block's header and padding) so that the tail the receiver appends still parses. More than
    /// that after the end of the stream is data this reader cannot inflate.
    /// </summary>
    private const int MaxBytesAfterFinalBlock = 1;

    private readonly int _maxContentBytes;
    private readonly byte[] _header = new byte[MaxHeaderBytes];
    private readonly ArrayBufferWriter<byte> _message = new();
    private readonly ArrayBufferWriter<byte> _compressed = new();
    private readonly byte[] _control = new byte[MaxControlPayload];
    private int _headerHave;
    private bool _inPayload;

    // The current frame.
    private bool _fin;
    private bool _rsv1;
    private int _opcode;
    private long _remaining;
    private bool _masked;
    private uint _maskKey;
    private int _maskOffset;
    private int _controlLength;

    // The data message being put together from its frames.
    private WebSocketOpcode? _messageOpcode;
    private bool _messageCompressed;
    private long _messageLength;

    // A compressed message's payload as it came (kept up to the cap), recorded in its place when it does not inflate.
    private long _compressedLength;
    private bool _inflateFailed;

    private InflateState? _inflate;
    private readonly bool _perMessageDeflate;

    /// <summary>Creates a reader for one direction.</summary>
    /// <param name="maxContentBytes">How many payload bytes of each message to keep.</param>
    /// <param name="perMessageDeflate">Whether the handshake negotiated permessage-deflate (RFC 7692).</param>
    public WebSocketMessageReader(int maxContentBytes, bool perMessageDeflate)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxContentBytes);
        _maxContentBytes = maxContentBytes;
        _perMessageDeflate = perMessageDeflate;
    }

    /// <summary>Why the reader stopped; null while it reads.</summary>
    public string? Error { get; private set; }

    /// <summary>Reads the next relayed bytes; every message they complete is passed to <paramref name="onMessage"/>.</summary>
    /// <param name="data">The bytes, as relayed.</param>
    /// <param name="onMessage">Called for each complete message, in order.</param>
    /// <typeparam name="THandler">The receiver's type (a struct or class; no delegate is allocated).</typeparam>
    public void Read<THandler>(ReadOnlySequence<byte> data, THandler onMessage)
        where THandler : IWebSocketMessageHandler
    {
        foreach (var segment in data)
        {
            var span = segment.Span;
            while (!span.IsEmpty && Error is null)
            {
                span = _inPayload ? ReadPayload(span, onMessage) : ReadHeader(span, onMessage);
            }

            if (Error is not null)
            {
                return;
            }
        }
    }

    private ReadOnlySpan<byte> ReadHeader<THandler>(ReadOnlySpan<byte> span, THandler onMessage)
        where THandler : IWebSocketMessageHandler
    {
        // Collect the two fixed bytes first, then as many more as they announce.
        int needed = HeaderLength();
        int take = Math.Min(needed - _headerHave, span.Length);
        span[..take].CopyTo(_header.AsSpan(_headerHave));
        _headerHave += take;
        span = span[take..];
        if (_headerHave < 2 || _headerHave < HeaderLength())
        {
            return span;
        }

        StartFrame();
        if (Error is null && _remaining == 0)
        {
            EndFrame(onMessage);
        }

        return span;
    }

    /// <summary>The header's length as far as its first two bytes tell (2 until they are in).</summary>
    private int HeaderLength()
    {
        if (_headerHave < 2)
        {
            return 2;
        }

        int length = 2;
        int len7 = _header[1] & 0x7F;
        length += len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        length += (_header[1] & 0x80) != 0 ? 4 : 0;
        return length;
    }

    // RFC 6455 §5.2: the base framing protocol.
    private void StartFrame()
    {
        byte b0 = _header[0];
        byte b1 = _header[1];
        _fin = (b0 & 0x80) != 0;
        _rsv1 = (b0 & 0x40) != 0;
        _opcode = b0 & 0x0F;
        _masked = (b1 & 0x80) != 0;
        int len7 = b1 & 0x7F;
        int at = 2;
        if (len7 == 126)
        {
            _remaining = BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(2));
            at = 4;
        }
        else if (len7 == 127)
        {
            ulong length = BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(2));
            if (length > long.MaxValue)
            {
                // §5.2: "the most significant bit MUST be 0".
                Stop("a frame length with its most significant bit set");
                return;
            }

            _remaining = (long)length;
            at = 10;
        }
        else
        {
            _remaining = len7;
        }

        _maskKey = _masked ? BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(at)) : 0;
        _maskOffset = 0;
        _headerHave = 0;
        _inPayload = true;

        // §5.2: RSV2 and RSV3 only with an extension that defines them; none is understood here. RSV1 is
        // permessage-deflate's "compressed" bit, on the first frame of a data message only (RFC 7692 §6).
        if ((b0 & 0x30) != 0 || (_rsv1 && (!_perMessageDeflate || _opcode is not (1 or 2))))
        {
            Stop("reserved bits set that no negotiated extension defines");
        }
        else if (_opcode >= 8)
        {
            // §5.5: control frames are never fragmented and carry at most 125 bytes; they may come between fragments.
            if (_opcode > 10 || !_fin || _remaining > MaxControlPayload)
            {
                Stop(_opcode > 10 ? $"unknown control opcode 0x{_opcode:X}" : "a fragmented or oversized control frame");
            }

            _controlLength = 0;
        }
        else if (_opcode == 0)
        {
            // §5.4: a continuation frame continues the message in progress.
            if (_messageOpcode is null)
            {
                Stop("a continuation frame with no message in progress");
            }
        }
        else if (_opcode is 1 or 2)
        {
            if (_messageOpcode is not null)
            {
                Stop("a new data frame while a fragmented message was in progress");
                return;
            }

            _messageOpcode = (WebSocketOpcode)_opcode;
            _messageCompressed = _rsv1;
            _messageLength = 0;
            _message.ResetWrittenCount();
            _compressedLength = 0;
            _compressed.ResetWrittenCount();
            _inflateFailed = false;
            _inflate?.BeginMessage();
        }
        else
        {
            Stop($"unknown data opcode 0x{_opcode:X}");
        }
    }

    private ReadOnlySpan<byte> ReadPayload<THandler>(ReadOnlySpan<byte> span, THandler onMessage)
        where THandler : IWebSocketMessageHandler
    {
        int take = (int)Math.Min(_remaining, span.Length);
        var chunk = span[..take];
        _remaining -= take;
        if (_masked)
        {
            // §5.3: unmask a copy in small steps (the relayed bytes are never touched).
            Span<byte> unmasked = stackalloc byte[512];
            while (!chunk.IsEmpty)
            {
                int n = Math.Min(chunk.Length, unmasked.Length);
                for (int i = 0; i < n; i++)
                {
                    unmasked[i] = (byte)(chunk[i] ^ (byte)(_maskKey >> (8 * (3 - ((_maskOffset + i) & 3)))));
                }

                _maskOffset = (_maskOffset + n) & 3;
                Payload(unmasked[..n]);
                chunk = chunk[n..];
            }
        }
        else
        {
            Payload(chunk);
        }

        if (_remaining == 0 && Error is null)
        {
            EndFrame(onMessage);
        }

        return span[take..];
    }

    private void Payload(ReadOnlySpan<byte> data)
    {
        if (_opcode >= 8)
        {
            data.CopyTo(_control.AsSpan(_controlLength));
            _controlLength += data.Length;
        }
        else if (_messageCompressed)
        {
            _compressedLength += data.Length;
            Keep(_compressed, data);
            _inflateFailed = _inflateFailed || !Inflater().Feed(data, this, isTail: false);
        }
        else
        {
            Append(data);
        }
    }

    /// <summary>Adds decoded payload bytes to the message: counted whole, kept up to the cap.</summary>
    private void Append(ReadOnlySpan<byte> data)
    {
        _messageLength += data.Length;
        Keep(_message, data);
    }

    private void Keep(ArrayBufferWriter<byte> buffer, ReadOnlySpan<byte> data)
    {
        long room = _maxContentBytes - buffer.WrittenCount;
        if (room > 0)
        {
            var keep = data[..(int)Math.Min(room, data.Length)];
            keep.CopyTo(buffer.GetSpan(keep.Length));
            buffer.Advance(keep.Length);
        }
    }

    private void EndFrame<THandler>(THandler onMessage)
        where THandler : IWebSocketMessageHandler
    {
        _inPayload = false;
        if (_opcode >= 8)
        {
            onMessage.OnMessage(new WebSocketReadMessage((WebSocketOpcode)_opcode, _control.AsSpan(0, _controlLength).ToArray(), _controlLength, IsCompressed: false));
            return;
        }

        if (!_fin)
        {
            return;
        }

        // A compressed message with no payload at all is not DEFLATE output (an empty one is 0x00, RFC 7692 §7.2.3.6):
        // nothing to inflate, and its tail alone would leave the inflater inside a stored block.
        if (_messageCompressed && _compressedLength > 0)
        {
            // RFC 7692 §7.2.2: append 0x00 0x00 0xff 0xff to the message's payload, then inflate.
            var inflate = Inflater();
            _inflateFailed = _inflateFailed || !inflate.Feed(DeflateTail, this, isTail: true);
            if (!_inflateFailed && inflate.Ended)
            {
                // RFC 7692 §7.2.3.4: the message ended its DEFLATE stream (BFINAL); the sender starts the next message
                // with a new one, which cannot refer to this one's window (RFC 1951 §3.2: distances reach back within
                // a stream). A new inflater reads it, as browsers reset theirs (zlib's inflateReset).
                inflate.Dispose();
                _inflate = null;
            }
        }

        var opcode = _messageOpcode!.Value;
        _messageOpcode = null;
        var message = _messageCompressed && _inflateFailed
            ? new WebSocketReadMessage(opcode, _compressed.WrittenSpan.ToArray(), _compressedLength, IsCompressed: true)
            : new WebSocketReadMessage(opcode, _message.WrittenSpan.ToArray(), _messageLength, IsCompressed: false);
        onMessage.OnMessage(message);
    }

    private InflateState Inflater()
    {
        if (_inflate is null)
        {
            _inflate = new InflateState();
            _inflate.BeginMessage();
        }

        return _inflate;
    }

    private void Stop(string reason)
    {
        Error = reason;
        _inPayload = false;
    }

    /// <inheritdoc/>
    public void Dispose() => _inflate?.Dispose();

    /// <summary>
    /// One direction's inflater. permessage-deflate keeps the LZ77 window across messages unless "no context takeover"
    /// was agreed (RFC 7692 §7.1.1), so one inflater reads every compressed message of the direction in order, until a
    /// message ends the DEFLATE stream (<see cref="Ended"/>). Once it fails or a message inflates past
    /// <see cref="MaxInflatedMessageBytes"/>, the window is lost: that message and the direction's later compressed
    /// ones are kept as they came.
    /// </summary>
    private sealed class InflateState : IDisposable
    {
        private readonly FeedStream _feed = new();
        private readonly DeflateStream _deflate;
        private readonly byte[] _out = new byte[4096];
        private long _messageInflated;
        private long _afterEnd;

        public InflateState() => _deflate = new DeflateStream(_feed, CompressionMode.Decompress);

        /// <summary>The window is lost: nothing more of this direction is inflated.</summary>
        public bool Failed { get; private set; }

        /// <summary>The DEFLATE stream ended: a block with BFINAL set was read (RFC 1951 §3.2.3).</summary>
        public bool Ended { get; private set; }

        public void BeginMessage() => _messageInflated = 0;

        /// <summary>Inflates the next bytes of the message into <paramref name="reader"/>; false when they cannot be.</summary>
        /// <param name="compressed">The bytes, as they came.</param>
        /// <param name="reader">The reader the inflated bytes are appended to.</param>
        /// <param name="isTail">Whether the bytes are the tail appended to the message (<see cref="DeflateTail"/>).</param>
        public bool Feed(ReadOnlySpan<byte> compressed, WebSocketMessageReader reader, bool isTail)
        {
            if (Failed)
            {
                return false;
            }

            if (Ended)
            {
                return isTail || AfterEnd(compressed.Length);
            }

            _feed.Set(compressed.ToArray());
            try
            {
                int n;
                while ((n = _deflate.Read(_out)) > 0)
                {
                    _messageInflated += n;
                    if (_messageInflated > MaxInflatedMessageBytes)
                    {
                        Failed = true;
                        return false;
                    }

                    reader.Append(_out.AsSpan(0, n));
                }
            }
            catch (InvalidDataException)
            {
                // Not valid DEFLATE data (or a window this inflater was not given): keep the bytes as they came.
                Failed = true;
                return false;
            }

            // An inflater that still wants input takes all it is given; one that left some has ended its stream.
            if (_feed.Remaining > 0)
            {
                Ended = true;
                return isTail || AfterEnd(_feed.Remaining);
            }

            return true;
        }

        private bool AfterEnd(int bytes)
        {
            _afterEnd += bytes;
            Failed = _afterEnd > MaxBytesAfterFinalBlock;
            return !Failed;
        }

        public void Dispose() => _deflate.Dispose();
    }

    /// <summary>The input of the inflater: the bytes of the latest payload chunk, then "no more for now".</summary>
    private sealed class FeedStream : Stream
    {
        private byte[] _data = [];
        private int _at;

        /// <summary>How many of the latest bytes the inflater has not taken.</summary>
        public int Remaining => _data.Length - _at;

        public void Set(byte[] data)
        {
            _data = data;
            _at = 0;
        }

        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(buffer.Length, _data.Length - _at);
            _data.AsSpan(_at, n).CopyTo(buffer);
            _at += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>Receives the messages a <see cref="WebSocketMessageReader"/> reads.</summary>
internal interface IWebSocketMessageHandler
{
    /// <summary>A message completed.</summary>
    /// <param name="message">The message.</param>
    void OnMessage(in WebSocketReadMessage message);
}
