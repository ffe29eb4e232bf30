namespace Interpose.Core.Http2;

/// <summary>One flow-control window (RFC 9113 §5.2, §6.9): of a stream, or of the connection (stream 0). Use one
/// per direction: a <em>send</em> window that DATA we send consumes and the peer's WINDOW_UPDATE replenishes, and a
/// <em>receive</em> window that the peer's DATA consumes and our WINDOW_UPDATE replenishes. Not thread-safe: owned
/// by the connection loop (send windows under the writer's lock).</summary>
public sealed class FlowWindow
{
    private long _size;

    /// <summary>Creates a window.</summary>
    /// <param name="streamId">The stream, or 0 for the connection window; decides whether a violation is a stream
    /// or a connection error (RFC 9113 §6.9.1).</param>
    /// <param name="initialSize">The starting size, 0..2^31-1 (65,535 until SETTINGS say otherwise; the connection
    /// window only changes through WINDOW_UPDATE, §6.9.2).</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is negative.</exception>
    public FlowWindow(int streamId, int initialSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(streamId);
        ArgumentOutOfRangeException.ThrowIfNegative(initialSize);
        StreamId = streamId;
        _size = initialSize;
    }

    /// <summary>The stream this window belongs to (0: the connection).</summary>
    public int StreamId { get; private set; }

    /// <summary>Makes this window the fresh window of <paramref name="streamId"/> (a pooled stream object reused).</summary>
    internal void Reset(int streamId, int initialSize)
    {
        StreamId = streamId;
        _size = initialSize;
    }

    /// <summary>The credit left. A send window can be negative after SETTINGS_INITIAL_WINDOW_SIZE shrinks (RFC 9113
    /// §6.9.2: "can become negative").</summary>
    public long Size => _size;

    /// <summary>Adds <paramref name="increment"/> (a WINDOW_UPDATE received for a send window, or one we send for a
    /// receive window).</summary>
    /// <param name="increment">The credit; the frame reader already rejected 0.</param>
    /// <exception cref="Http2ConnectionException">Increment 0 on the connection (PROTOCOL_ERROR), or the connection
    /// window would exceed 2^31-1 (FLOW_CONTROL_ERROR).</exception>
    /// <exception cref="Http2StreamException">The same on a stream window (RST_STREAM).</exception>
    public void Increase(int increment)
    {
        // RFC 9113 §6.9: an increment of 0 is PROTOCOL_ERROR (stream or connection, as appropriate).
        if (increment <= 0)
        {
            throw Error(Http2ErrorCode.ProtocolError, $"Window increment {increment}; it must be 1..2^31-1 (RFC 9113 §6.9).");
        }

        // RFC 9113 §6.9.1: "A sender MUST NOT allow a flow-control window to exceed 2^31-1 octets. If a sender receives
        // a WINDOW_UPDATE that causes a flow-control window to exceed this maximum, it MUST terminate either the
        // stream or the connection, as appropriate ... with an error code of FLOW_CONTROL_ERROR".
        if (_size + increment > Http2Settings.MaxWindowSize)
        {
            throw Error(Http2ErrorCode.FlowControlError, $"Window {_size} + {increment} exceeds 2^31-1 (RFC 9113 §6.9.1).");
        }

        _size += increment;
    }

    /// <summary>Debits a received flow-controlled frame (DATA: its whole length, padding included, RFC 9113 §6.1).</summary>
    /// <param name="length">The frame's payload length.</param>
    /// <exception cref="Http2ConnectionException">More than the connection window (FLOW_CONTROL_ERROR).</exception>
    /// <exception cref="Http2StreamException">More than a stream window (FLOW_CONTROL_ERROR).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    public void Consume(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);

        // RFC 9113 §6.9: "A receiver MAY respond with a stream error or connection error of type FLOW_CONTROL_ERROR if
        // it is unable to accept a frame" — the peer sent beyond the credit we granted (§6.9.1: a sender MUST NOT).
        if (length > _size)
        {
            throw Error(Http2ErrorCode.FlowControlError, $"{length} octets of DATA exceed the window of {_size} (RFC 9113 §6.9.1).");
        }

        _size -= length;
    }

    /// <summary>Takes up to <paramref name="wanted"/> octets of send credit (never more than is available).</summary>
    /// <param name="wanted">How much the caller would like to send.</param>
    /// <returns>How much it may send now, 0 when the window is empty or negative.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="wanted"/> is negative.</exception>
    public int Take(int wanted)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(wanted);
        int granted = (int)Math.Clamp(_size, 0, wanted);
        _size -= granted;
        return granted;
    }

    /// <summary>Applies a change of SETTINGS_INITIAL_WINDOW_SIZE to a stream send window (RFC 9113 §6.9.2: "adjust the
    /// size of all stream flow-control windows that it maintains by the difference").</summary>
    /// <param name="delta">New initial size minus old, from <see cref="Http2Settings.Apply(in Http2Frame)"/>.</param>
    /// <exception cref="Http2ConnectionException">The window would exceed 2^31-1 — RFC 9113 §6.9.2: "MUST treat ... as
    /// a connection error of type FLOW_CONTROL_ERROR".</exception>
    /// <exception cref="InvalidOperationException">This is the connection window, which SETTINGS never changes.</exception>
    public void ApplyInitialWindowSizeDelta(int delta)
    {
        if (StreamId == 0)
        {
            throw new InvalidOperationException("SETTINGS_INITIAL_WINDOW_SIZE does not change the connection window (RFC 9113 §6.9.2).");
        }

        if (_size + delta > Http2Settings.MaxWindowSize)
        {
            throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, $"SETTINGS_INITIAL_WINDOW_SIZE change of {delta} overflows stream {StreamId}'s window {_size} (RFC 9113 §6.9.2).");
        }

        _size += delta;
    }

    private Exception Error(Http2ErrorCode code, string message) => StreamId == 0
        ? new Http2ConnectionException(code, message)
        : new Http2StreamException(StreamId, code, message);
}
