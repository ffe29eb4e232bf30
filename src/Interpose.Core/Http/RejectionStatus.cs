namespace Interpose.Core.Http;

/// <summary>The one map from <see cref="RejectionReason"/> to the status code the proxy answers with.</summary>
public static class RejectionStatus
{
    /// <summary>The status a proxy sends when an upstream response is rejected (RFC 9112 §6.3 item 5: MUST send 502).</summary>
    public const int BadGateway = 502;

    /// <summary>Maps a rejection of a client request to the status code to answer with.</summary>
    /// <param name="reason">Why the request was rejected.</param>
    /// <returns>400, 414, 431, 501 or 505.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="reason"/> is not a defined value.</exception>
    public static int ToStatusCode(RejectionReason reason) => reason switch
    {
        RejectionReason.RequestLineTooLong => 414,
        RejectionReason.HeadersTooLarge or RejectionReason.TooManyHeaders => 431,
        RejectionReason.UnsupportedTransferCoding => 501,
        RejectionReason.UnsupportedHttpVersion => 505,
        >= RejectionReason.InvalidRequestLine and <= RejectionReason.TrailersTooLarge => 400,
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "Unknown rejection reason."),
    };

    /// <summary>Maps a rejection to a status code, answering 502 for anything wrong in an upstream response.</summary>
    /// <param name="reason">Why the message was rejected.</param>
    /// <param name="inResponse"><see langword="true"/> when the bad message came from upstream.</param>
    /// <returns>502 for responses, otherwise <see cref="ToStatusCode(RejectionReason)"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="reason"/> is not a defined value.</exception>
    public static int ToStatusCode(RejectionReason reason, bool inResponse)
    {
        int status = ToStatusCode(reason);
        return inResponse ? BadGateway : status;
    }
}
