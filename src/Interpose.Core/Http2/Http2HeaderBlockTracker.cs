namespace Interpose.Core.Http2;

/// <summary>Enforces the field block sequencing of RFC 9113 §4.3 and §6.10 across frames, and bounds a block's
/// encoded size and CONTINUATION count (CONTINUATION flood: CVE-2023-45288, CVE-2024-27316 and relatives). Feed it
/// every frame the reader returns, before acting on the frame. One per connection and direction.</summary>
public sealed class Http2HeaderBlockTracker
{
    private readonly int _maxFieldBlockSize;
    private readonly int _maxContinuationFrames;
    private int _blockSize;
    private int _continuations;

    /// <summary>Creates a tracker.</summary>
    /// <param name="maxFieldBlockSize">Most encoded octets per block (<see cref="Http2Limits.MaxFieldBlockSize"/>).</param>
    /// <param name="maxContinuationFrames">Most CONTINUATION frames per block (<see cref="Http2Limits.MaxContinuationFrames"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException">A limit is negative.</exception>
    public Http2HeaderBlockTracker(int maxFieldBlockSize = Http2Limits.MaxFieldBlockSize, int maxContinuationFrames = Http2Limits.MaxContinuationFrames)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxFieldBlockSize);
        ArgumentOutOfRangeException.ThrowIfNegative(maxContinuationFrames);
        _maxFieldBlockSize = maxFieldBlockSize;
        _maxContinuationFrames = maxContinuationFrames;
    }

    /// <summary>Whether a field block is open (a HEADERS or PUSH_PROMISE without END_HEADERS was seen).</summary>
    public bool IsOpen => StreamId != 0;

    /// <summary>The stream of the open block, 0 when none.</summary>
    public int StreamId { get; private set; }

    /// <summary>Checks <paramref name="frame"/> against the open block, if any, and opens or closes blocks.</summary>
    /// <param name="frame">The next frame received.</param>
    /// <returns><see langword="true"/> when this frame ends a field block (END_HEADERS seen): decode the block now.</returns>
    /// <exception cref="Http2ConnectionException">PROTOCOL_ERROR: another frame interleaved in a block, a CONTINUATION
    /// outside one, or a block over the size or frame budget.</exception>
    public bool OnFrame(in Http2Frame frame)
    {
        if (IsOpen)
        {
            // RFC 9113 §4.3: "Field blocks MUST be transmitted as a contiguous sequence of frames, with no interleaved
            // frames of any other type or from any other stream ... A receiver MUST treat the receipt of any other type of
            // frame or a frame on a different stream as a connection error of type PROTOCOL_ERROR."
            if (frame.Type != FrameType.Continuation || frame.StreamId != StreamId)
            {
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"{frame.Type} on stream {frame.StreamId} inside the field block of stream {StreamId} (RFC 9113 §4.3).");
            }

            _continuations++;
            if (_continuations > _maxContinuationFrames)
            {
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"More than {_maxContinuationFrames} CONTINUATION frames in one field block (CONTINUATION flood).");
            }

            Add(frame);
            return Close(frame);
        }

        switch (frame.Type)
        {
            case FrameType.Continuation:
                // RFC 9113 §6.10: "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame
                // without the END_HEADERS flag set. A recipient that observes violation of this rule MUST respond with a
                // connection error of type PROTOCOL_ERROR."
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"CONTINUATION on stream {frame.StreamId} with no open field block (RFC 9113 §6.10).");

            case FrameType.Headers or FrameType.PushPromise:
                StreamId = frame.StreamId;
                _blockSize = 0;
                _continuations = 0;
                Add(frame);
                return Close(frame);

            default:
                return false;
        }
    }

    private void Add(in Http2Frame frame)
    {
        _blockSize += (int)frame.Payload.Length;
        if (_blockSize > _maxFieldBlockSize)
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"Field block on stream {StreamId} exceeds {_maxFieldBlockSize} encoded octets (CONTINUATION flood).");
        }
    }

    private bool Close(in Http2Frame frame)
    {
        if (!frame.EndHeaders)
        {
            return false;
        }

        StreamId = 0;
        return true;
    }
}
