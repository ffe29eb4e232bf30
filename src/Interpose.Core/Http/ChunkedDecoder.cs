using System.Buffers;

namespace Interpose.Core.Http;

/// <summary>
/// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1), an explicit state machine. Framing bytes
/// are consumed as they are validated, chunk payload is handed out as slices of the input (no copy), and the trailer
/// section is parsed with the same rules as a header section.
/// </summary>
/// <remarks>
/// <code>
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// last-chunk   = 1*("0") [ chunk-ext ] CRLF
/// </code>
/// </remarks>
public sealed class ChunkedDecoder
{
    private readonly Http1Limits _limits;
    private readonly bool _inResponse;
    private State _state;
    private int _digits;
    private long _chunkSize;
    private long _remaining;
    private int _extensionLength;
    private long _trailerLineStart;
    private long _trailerSearchFrom;
    private int _trailerCount;

    /// <summary>Creates a decoder for a request body.</summary>
    /// <param name="limits">The caps to enforce.</param>
    /// <exception cref="ArgumentNullException"><paramref name="limits"/> is null.</exception>
    public ChunkedDecoder(Http1Limits limits)
        : this(limits, inResponse: false)
    {
    }

    /// <summary>Creates a decoder; <paramref name="inResponse"/> makes its exceptions carry 502.</summary>
    /// <param name="limits">The caps to enforce.</param>
    /// <param name="inResponse"><see langword="true"/> when decoding an upstream response body.</param>
    /// <exception cref="ArgumentNullException"><paramref name="limits"/> is null.</exception>
    public ChunkedDecoder(Http1Limits limits, bool inResponse)
    {
        ArgumentNullException.ThrowIfNull(limits);
        _limits = limits;
        _inResponse = inResponse;
    }

    private enum State
    {
        Size,
        Extension,
        SizeLf,
        Data,
        DataCr,
        DataLf,
        Trailer,
        Completed,
    }

    /// <summary>The trailer fields once <see cref="ChunkedReadResult.Completed"/> was returned (empty when none); otherwise <see langword="null"/>.</summary>
    public HttpHeaders? Trailers { get; private set; }

    /// <summary>Whether the whole chunked body has been read.</summary>
    public bool IsCompleted => _state == State.Completed;

    /// <summary>Decodes from the start of <paramref name="input"/>.</summary>
    /// <param name="input">Unconsumed body bytes.</param>
    /// <param name="consumed">How far the input was consumed: past returned data, past validated framing, or past the trailer section.</param>
    /// <param name="data">For <see cref="ChunkedReadResult.Data"/>, a slice of <paramref name="input"/> holding payload bytes; otherwise empty.</param>
    /// <returns>What was found.</returns>
    /// <exception cref="HttpProtocolException">A bad chunk size (non-hex, empty, too many digits, overflow), an oversize or invalid
    /// extension, a missing CRLF after data, or a bad or oversize trailer section.</exception>
    public ChunkedReadResult Read(in ReadOnlySequence<byte> input, out SequencePosition consumed, out ReadOnlySequence<byte> data)
    {
        data = default;
        var reader = new SequenceReader<byte>(input);
        while (true)
        {
            switch (_state)
            {
                case State.Data:
                    if (reader.End)
                    {
                        consumed = reader.Position;
                        return ChunkedReadResult.NeedMoreData;
                    }

                    long take = Math.Min(_remaining, reader.Remaining);
                    SequencePosition start = reader.Position;
                    reader.Advance(take);
                    data = input.Slice(start, reader.Position);
                    _remaining -= take;
                    if (_remaining == 0)
                    {
                        _state = State.DataCr;
                    }

                    consumed = reader.Position;
                    return ChunkedReadResult.Data;

                case State.Trailer:
                    return ReadTrailers(input.Slice(reader.Position), out consumed);

                case State.Completed:
                    consumed = reader.Position;
                    return ChunkedReadResult.Completed;

                default:
                    if (!reader.TryRead(out byte b))
                    {
                        consumed = reader.Position;
                        return ChunkedReadResult.NeedMoreData;
                    }

                    Step(b);
                    break;
            }
        }
    }

    /// <summary>Returns the decoder to its initial state for another body.</summary>
    public void Reset()
    {
        _state = State.Size;
        _digits = 0;
        _chunkSize = 0;
        _remaining = 0;
        _extensionLength = 0;
        _trailerLineStart = 0;
        _trailerSearchFrom = 0;
        _trailerCount = 0;
        Trailers = null;
    }

    private void Step(byte b)
    {
        switch (_state)
        {
            case State.Size:
                int hex = HexValue(b);
                if (hex >= 0)
                {
                    // RFC 9112 §7.1: "Recipients MUST anticipate potentially large hexadecimal numerals and prevent
                    // parsing errors due to integer conversion overflows or precision loss due to integer representation."
                    if (++_digits > _limits.MaxChunkSizeDigits || _chunkSize > (long.MaxValue >> 4))
                    {
                        Rejections.Throw(RejectionReason.ChunkSizeOverflow, _inResponse);
                    }

                    _chunkSize = (_chunkSize << 4) | (uint)hex;
                }
                else if (_digits == 0)
                {
                    // RFC 9112 §7.1: chunk-size = 1*HEXDIG, so no "0x", sign, or leading whitespace.
                    Rejections.Throw(RejectionReason.InvalidChunkSize, _inResponse);
                }
                else if (b == (byte)';')
                {
                    // The extension length counts from the ';' so a limit of 0 forbids extensions.
                    _extensionLength = 1;
                    if (_extensionLength > _limits.MaxChunkExtensionLength)
                    {
                        Rejections.Throw(RejectionReason.ChunkExtensionTooLong, _inResponse);
                    }

                    _state = State.Extension;
                }
                else if (b == (byte)'\r')
                {
                    _state = State.SizeLf;
                }
                else
                {
                    // NOTE: RFC 9112 §7.1.1 allows BWS before ";". Interpose rejects any whitespace after the size,
                    // as llhttp does in strict mode: "5 \r\n" is read differently by different parsers.
                    Rejections.Throw(RejectionReason.InvalidChunkSize, _inResponse);
                }

                break;

            case State.Extension:
                if (b == (byte)'\r')
                {
                    _state = State.SizeLf;
                    break;
                }

                // RFC 9112 §7.1.1: extensions are tokens and quoted strings; no CTLs (HTAB aside) or bare LF.
                if (!HttpChars.IsFieldValueChar(b))
                {
                    Rejections.Throw(RejectionReason.InvalidChunkExtension, _inResponse);
                }

                // RFC 9112 §7.1.1: "A recipient ... SHOULD limit the total length of chunk extensions received".
                if (++_extensionLength > _limits.MaxChunkExtensionLength)
                {
                    Rejections.Throw(RejectionReason.ChunkExtensionTooLong, _inResponse);
                }

                break;

            case State.SizeLf:
                if (b != (byte)'\n')
                {
                    Rejections.Throw(RejectionReason.InvalidChunkTerminator, _inResponse);
                }

                if (_chunkSize == 0)
                {
                    _state = State.Trailer;
                }
                else
                {
                    _remaining = _chunkSize;
                    _state = State.Data;
                }

                _digits = 0;
                _chunkSize = 0;
                _extensionLength = 0;
                break;

            case State.DataCr:
                if (b != (byte)'\r')
                {
                    Rejections.Throw(RejectionReason.InvalidChunkTerminator, _inResponse);
                }

                _state = State.DataLf;
                break;

            case State.DataLf:
                if (b != (byte)'\n')
                {
                    Rejections.Throw(RejectionReason.InvalidChunkTerminator, _inResponse);
                }

                _state = State.Size;
                break;

            default:
                throw new InvalidOperationException("Unreachable chunked decoder state.");
        }
    }

    private ChunkedReadResult ReadTrailers(in ReadOnlySequence<byte> input, out SequencePosition consumed)
    {
        // RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ), parsed like a header section and bounded the same
        // way. Nothing is consumed until the section is complete, so the next call sees the same start and the scan
        // resumes where it stopped instead of re-reading the section (no quadratic work for a byte-at-a-time peer).
        consumed = input.Start;
        long limit = _limits.MaxTrailerBytes;
        while (true)
        {
            long end = Math.Min(input.Length, limit);
            long lf = -1;
            if (end > _trailerSearchFrom)
            {
                SequencePosition? p = input.Slice(_trailerSearchFrom, end - _trailerSearchFrom).PositionOf((byte)'\n');
                lf = p is null ? -1 : _trailerSearchFrom + input.Slice(_trailerSearchFrom, p.Value).Length;
            }

            if (lf < 0)
            {
                if (input.Length >= limit)
                {
                    Rejections.Throw(RejectionReason.TrailersTooLarge, _inResponse);
                }

                _trailerSearchFrom = end;
                return ChunkedReadResult.NeedMoreData;
            }

            // RFC 9112 §2.2: bare LF rejected, as in the header section.
            if (lf == _trailerLineStart || ByteAt(input, lf - 1) != (byte)'\r')
            {
                Rejections.Throw(RejectionReason.BareLineFeed, _inResponse);
            }

            if (lf - _trailerLineStart == 1)
            {
                int length = (int)(lf + 1);
                ParseTrailers(input.Slice(0, length));
                consumed = input.GetPosition(length);
                _state = State.Completed;
                return ChunkedReadResult.Completed;
            }

            if (++_trailerCount > _limits.MaxHeaderCount)
            {
                Rejections.Throw(RejectionReason.TrailersTooLarge, _inResponse);
            }

            _trailerLineStart = _trailerSearchFrom = lf + 1;
        }
    }

    private void ParseTrailers(in ReadOnlySequence<byte> section)
    {
        var trailers = new HttpHeaders();
        if (section.IsSingleSegment)
        {
            ParseTrailerLines(section.FirstSpan, trailers);
        }
        else
        {
            int length = (int)section.Length;
            byte[] rented = ArrayPool<byte>.Shared.Rent(length);
            try
            {
                section.CopyTo(rented);
                ParseTrailerLines(rented.AsSpan(0, length), trailers);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        Trailers = trailers;
    }

    private void ParseTrailerLines(ReadOnlySpan<byte> section, HttpHeaders trailers)
    {
        // Every line ends with CRLF (checked while locating); the last one is the empty line.
        ReadOnlySpan<byte> lines = section[..^2];
        while (!lines.IsEmpty)
        {
            int lf = lines.IndexOf((byte)'\n');
            Http1Parser.ParseFieldLine(lines[..(lf - 1)], trailers, _inResponse);
            lines = lines[(lf + 1)..];
        }
    }

    private static byte ByteAt(in ReadOnlySequence<byte> input, long offset) => input.Slice(offset, 1).FirstSpan[0];

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
