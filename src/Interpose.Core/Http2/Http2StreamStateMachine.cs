namespace Interpose.Core.Http2;

/// <summary>The RFC 9113 §5.1 state machine of one stream. The connection feeds every frame it sends and receives on
/// the stream; the machine moves and says whether a received frame is to be processed or ignored, or throws the
/// error the RFC specifies.</summary>
/// <remarks>
/// <code>
///                          idle
///          send/recv H  /        \  send/recv H + ES
///                   open ------- half-closed (local/remote)
///      send ES /      \ recv ES          | the other ES, or R
///   half-closed(local) half-closed(remote)
///               \     /
///               closed   (R from either side at any point)
/// </code>
/// H = HEADERS, ES = END_STREAM flag, R = RST_STREAM. PRIORITY is allowed in every state (§5.1). Frames for streams
/// the connection no longer tracks (ids at or below the highest one opened) are the connection's business; it
/// treats them like <see cref="Http2StreamCloseReason.EndStream"/> or ignores them after its own reset.
/// </remarks>
public sealed class Http2StreamStateMachine
{
    /// <summary>Creates the machine for <paramref name="streamId"/> in <see cref="Http2StreamState.Idle"/>.</summary>
    /// <param name="streamId">The stream id, for the errors thrown.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="streamId"/> is not positive.</exception>
    public Http2StreamStateMachine(int streamId)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(streamId);
        StreamId = streamId;
    }

    /// <summary>The stream id.</summary>
    public int StreamId { get; }

    /// <summary>The current state.</summary>
    public Http2StreamState State { get; private set; } = Http2StreamState.Idle;

    /// <summary>How the stream closed, once <see cref="State"/> is <see cref="Http2StreamState.Closed"/>.</summary>
    public Http2StreamCloseReason CloseReason { get; private set; }

    /// <summary>Whether we may still send DATA or HEADERS (open or half-closed remote).</summary>
    public bool CanSend => State is Http2StreamState.Open or Http2StreamState.HalfClosedRemote;

    /// <summary>Whether the peer may still send DATA or HEADERS (open or half-closed local).</summary>
    public bool CanReceive => State is Http2StreamState.Open or Http2StreamState.HalfClosedLocal;

    /// <summary>Applies a frame received on this stream.</summary>
    /// <param name="type">The frame type.</param>
    /// <param name="endStream">END_STREAM was set (DATA, HEADERS).</param>
    /// <returns><see langword="true"/> to process the frame; <see langword="false"/> to drop it silently (PRIORITY,
    /// or late frames RFC 9113 §5.1 says to ignore). A dropped DATA frame still counts against the connection
    /// window (§6.9).</returns>
    /// <exception cref="Http2ConnectionException">The RFC makes this a connection error (e.g. DATA on an idle stream).</exception>
    /// <exception cref="Http2StreamException">The RFC makes this a stream error (e.g. DATA after the peer's END_STREAM).</exception>
    public bool OnReceive(FrameType type, bool endStream)
    {
        // RFC 9113 §5.1 lists PRIORITY as allowed in every state; it changes nothing (§5.3.2, deprecated).
        if (type == FrameType.Priority)
        {
            return false;
        }

        switch (State)
        {
            case Http2StreamState.Idle:
                // RFC 9113 §5.1 idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST
                // be treated as a connection error of type PROTOCOL_ERROR."
                if (type != FrameType.Headers)
                {
                    throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"{type} on idle stream {StreamId} (RFC 9113 §5.1).");
                }

                State = endStream ? Http2StreamState.HalfClosedRemote : Http2StreamState.Open;
                return true;

            case Http2StreamState.ReservedLocal:
                // RFC 9113 §5.1 reserved (local): only RST_STREAM, PRIORITY, WINDOW_UPDATE may be received.
                return type switch
                {
                    FrameType.RstStream => Close(Http2StreamCloseReason.ResetReceived),
                    FrameType.WindowUpdate => true,
                    _ => throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"{type} on reserved (local) stream {StreamId} (RFC 9113 §5.1)."),
                };

            case Http2StreamState.ReservedRemote:
                // RFC 9113 §5.1 reserved (remote): HEADERS → half-closed (local); RST_STREAM → closed; anything other than
                // those, PRIORITY and WINDOW_UPDATE → connection error PROTOCOL_ERROR.
                switch (type)
                {
                    case FrameType.Headers:
                        State = endStream ? Close(Http2StreamCloseReason.EndStream, Http2StreamState.Closed) : Http2StreamState.HalfClosedLocal;
                        return true;
                    case FrameType.RstStream:
                        return Close(Http2StreamCloseReason.ResetReceived);
                    case FrameType.WindowUpdate:
                        return true;
                    default:
                        throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"{type} on reserved (remote) stream {StreamId} (RFC 9113 §5.1).");
                }

            case Http2StreamState.Open:
            case Http2StreamState.HalfClosedLocal:
                // RFC 9113 §5.1 open / half-closed (local): any frame; END_STREAM moves to half-closed (remote) / closed.
                if (type == FrameType.RstStream)
                {
                    return Close(Http2StreamCloseReason.ResetReceived);
                }

                if (endStream && type is FrameType.Data or FrameType.Headers)
                {
                    if (State == Http2StreamState.Open)
                    {
                        State = Http2StreamState.HalfClosedRemote;
                    }
                    else
                    {
                        Close(Http2StreamCloseReason.EndStream);
                    }
                }

                return true;

            case Http2StreamState.HalfClosedRemote:
                // RFC 9113 §5.1 half-closed (remote): "If an endpoint receives additional frames, other than
                // WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST respond with a
                // stream error of type STREAM_CLOSED."
                return type switch
                {
                    FrameType.RstStream => Close(Http2StreamCloseReason.ResetReceived),
                    FrameType.WindowUpdate => true,
                    _ => throw new Http2StreamException(StreamId, Http2ErrorCode.StreamClosed, $"{type} on stream {StreamId} after the peer's END_STREAM (RFC 9113 §5.1)."),
                };

            default:
                return OnReceiveClosed(type);
        }
    }

    /// <summary>Applies a frame we are about to send on this stream.</summary>
    /// <param name="type">The frame type.</param>
    /// <param name="endStream">END_STREAM is set (DATA, HEADERS).</param>
    /// <exception cref="InvalidOperationException">RFC 9113 §5.1 forbids sending this frame in the current state (a bug
    /// in the caller, not the peer's fault).</exception>
    public void OnSend(FrameType type, bool endStream)
    {
        if (type == FrameType.Priority)
        {
            return;
        }

        switch (State)
        {
            case Http2StreamState.Idle when type == FrameType.Headers:
                State = endStream ? Http2StreamState.HalfClosedLocal : Http2StreamState.Open;
                return;
            case Http2StreamState.ReservedLocal when type == FrameType.Headers:
                State = endStream ? Http2StreamState.Closed : Http2StreamState.HalfClosedRemote;
                CloseReason = endStream ? Http2StreamCloseReason.EndStream : Http2StreamCloseReason.None;
                return;
            case Http2StreamState.ReservedRemote when type is FrameType.WindowUpdate:
                return;
            case Http2StreamState.Open or Http2StreamState.HalfClosedRemote when type is FrameType.Data or FrameType.Headers:
                if (endStream)
                {
                    if (State == Http2StreamState.Open)
                    {
                        State = Http2StreamState.HalfClosedLocal;
                    }
                    else
                    {
                        Close(Http2StreamCloseReason.EndStream);
                    }
                }

                return;
            case Http2StreamState.Open or Http2StreamState.HalfClosedRemote or Http2StreamState.HalfClosedLocal when type == FrameType.WindowUpdate:
                return;
            case not (Http2StreamState.Idle or Http2StreamState.Closed) when type == FrameType.RstStream:
                Close(Http2StreamCloseReason.ResetSent);
                return;
            default:
                throw new InvalidOperationException($"Cannot send {type} on stream {StreamId} in state {State} (RFC 9113 §5.1).");
        }
    }

    private bool OnReceiveClosed(FrameType type)
    {
        switch (CloseReason)
        {
            case Http2StreamCloseReason.ResetSent:
                // RFC 9113 §5.1 closed: "An endpoint MUST ignore frames that it receives on closed streams after it has
                // sent a RST_STREAM frame."
                return false;

            case Http2StreamCloseReason.ResetReceived:
                // RFC 9113 §5.1 closed: "An endpoint that receives any frame other than PRIORITY after receiving a
                // RST_STREAM MUST treat that as a stream error of type STREAM_CLOSED."
                throw new Http2StreamException(StreamId, Http2ErrorCode.StreamClosed, $"{type} on stream {StreamId} after the peer reset it (RFC 9113 §5.1).");

            default:
                // RFC 9113 §5.1 closed: WINDOW_UPDATE or RST_STREAM may arrive "for a short period after a DATA or
                // HEADERS frame containing an END_STREAM flag is sent" and are ignored; other frames "MAY" be a
                // connection error of type STREAM_CLOSED — taken, as Kestrel does: the peer sent past its own END_STREAM.
                if (type is FrameType.WindowUpdate or FrameType.RstStream)
                {
                    return false;
                }

                throw new Http2ConnectionException(Http2ErrorCode.StreamClosed, $"{type} on closed stream {StreamId} (RFC 9113 §5.1).");
        }
    }

    private bool Close(Http2StreamCloseReason reason)
    {
        State = Http2StreamState.Closed;
        CloseReason = reason;
        return true;
    }

    private Http2StreamState Close(Http2StreamCloseReason reason, Http2StreamState state)
    {
        CloseReason = reason;
        return state;
    }
}
