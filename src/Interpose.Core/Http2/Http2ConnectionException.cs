namespace Interpose.Core.Http2;

/// <summary>A connection error (RFC 9113 §5.4.1): the connection must send GOAWAY with <see cref="ErrorCode"/> and
/// close. HPACK decoding failures are connection errors of type COMPRESSION_ERROR (RFC 9113 §4.3).</summary>
public sealed class Http2ConnectionException : Exception
{
    /// <summary>Creates a PROTOCOL_ERROR connection error.</summary>
    public Http2ConnectionException()
        : this(Http2ErrorCode.ProtocolError, "HTTP/2 connection error.")
    {
    }

    /// <summary>Creates a PROTOCOL_ERROR connection error with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public Http2ConnectionException(string message)
        : this(Http2ErrorCode.ProtocolError, message)
    {
    }

    /// <summary>Creates a PROTOCOL_ERROR connection error with a message and a cause.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public Http2ConnectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
        ErrorCode = Http2ErrorCode.ProtocolError;
    }

    /// <summary>Creates a connection error with <paramref name="errorCode"/>.</summary>
    /// <param name="errorCode">The code for GOAWAY.</param>
    /// <param name="message">What went wrong, citing the rule.</param>
    public Http2ConnectionException(Http2ErrorCode errorCode, string message)
        : base(message)
    {
        ErrorCode = errorCode;
    }

    /// <summary>The code to send in GOAWAY.</summary>
    public Http2ErrorCode ErrorCode { get; }
}
