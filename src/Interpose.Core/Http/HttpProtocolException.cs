namespace Interpose.Core.Http;

/// <summary>A message broke the HTTP/1.1 grammar, a framing rule or a limit. Carries the reason and the status code to answer with.</summary>
public sealed class HttpProtocolException : Exception
{
    /// <summary>Creates an exception for a request-side rejection.</summary>
    public HttpProtocolException()
        : this(RejectionReason.InvalidRequestLine)
    {
    }

    /// <summary>Creates an exception with a custom message (the reason is <see cref="RejectionReason.InvalidRequestLine"/>).</summary>
    /// <param name="message">The message.</param>
    public HttpProtocolException(string message)
        : this(message, null)
    {
    }

    /// <summary>Creates an exception with a custom message and inner exception (the reason is <see cref="RejectionReason.InvalidRequestLine"/>).</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public HttpProtocolException(string message, Exception? innerException)
        : base(message, innerException)
    {
        Reason = RejectionReason.InvalidRequestLine;
        StatusCode = RejectionStatus.ToStatusCode(Reason);
    }

    /// <summary>Creates an exception for <paramref name="reason"/>.</summary>
    /// <param name="reason">Why the message was rejected.</param>
    /// <param name="inResponse"><see langword="true"/> when the message is an upstream response (status becomes 502).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="reason"/> is not a defined value.</exception>
    public HttpProtocolException(RejectionReason reason, bool inResponse = false)
        : base(FormatMessage(reason, inResponse))
    {
        Reason = reason;
        InResponse = inResponse;
        StatusCode = RejectionStatus.ToStatusCode(reason, inResponse);
    }

    /// <summary>Why the message was rejected.</summary>
    public RejectionReason Reason { get; }

    /// <summary>The status code to answer with (400/414/431/501/505, or 502 for a bad upstream response).</summary>
    public int StatusCode { get; }

    /// <summary><see langword="true"/> when the rejected message was an upstream response.</summary>
    public bool InResponse { get; }

    private static string FormatMessage(RejectionReason reason, bool inResponse) =>
        (inResponse ? "Malformed HTTP response: " : "Malformed HTTP request: ") + reason.ToString();
}
