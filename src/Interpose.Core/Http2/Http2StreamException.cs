namespace Interpose.Core.Http2;

/// <summary>A stream error (RFC 9113 §5.4.2): the connection sends RST_STREAM with <see cref="ErrorCode"/> on
/// <see cref="StreamId"/> and keeps going. Resets the proxy sends count against the rapid-reset budget
/// (<see cref="Http2Limits.ResetBudgetPerWindow"/>), which answers CVE-2025-8671 ("MadeYouReset").</summary>
public sealed class Http2StreamException : Exception
{
    /// <summary>Creates a PROTOCOL_ERROR stream error on stream 0 (use the other constructors).</summary>
    public Http2StreamException()
        : this(0, Http2ErrorCode.ProtocolError, "HTTP/2 stream error.")
    {
    }

    /// <summary>Creates a PROTOCOL_ERROR stream error on stream 0 with a message (use the other constructors).</summary>
    /// <param name="message">What went wrong.</param>
    public Http2StreamException(string message)
        : this(0, Http2ErrorCode.ProtocolError, message)
    {
    }

    /// <summary>Creates a PROTOCOL_ERROR stream error on stream 0 with a message and a cause.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public Http2StreamException(string message, Exception? innerException)
        : base(message, innerException)
    {
        ErrorCode = Http2ErrorCode.ProtocolError;
    }

    /// <summary>Creates a stream error.</summary>
    /// <param name="streamId">The stream to reset.</param>
    /// <param name="errorCode">The code for RST_STREAM.</param>
    /// <param name="message">What went wrong, citing the rule.</param>
    public Http2StreamException(int streamId, Http2ErrorCode errorCode, string message)
        : base(message)
    {
        StreamId = streamId;
        ErrorCode = errorCode;
    }

    /// <summary>The stream to reset.</summary>
    public int StreamId { get; }

    /// <summary>The code to send in RST_STREAM.</summary>
    public Http2ErrorCode ErrorCode { get; }
}
