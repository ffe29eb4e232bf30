using System.Globalization;
using System.Net.Sockets;
using System.Security.Authentication;
using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The one place that turns an expected network failure into an <see cref="ExchangeError"/> (phase, reason,
/// transient or not) and an <see cref="ExchangeError"/> into the status the client gets.
/// </summary>
internal static class Failures
{
    /// <summary>Describes a failure that happened in <paramref name="phase"/>.</summary>
    public static ExchangeError Describe(ExchangePhase phase, Exception exception, bool timedOut = false)
    {
        if (timedOut)
        {
            return new ExchangeError(phase, phase switch
            {
                ExchangePhase.Connect => "connect timeout",
                ExchangePhase.Tls => "TLS handshake timeout",
                ExchangePhase.Response => "timed out waiting for the response",
                _ => "timeout",
            }, IsTransient: true, exception);
        }

        return exception switch
        {
            AddonException addon => new ExchangeError(ExchangePhase.Addon, addon.Message, IsTransient: false, addon),
            // Read from the client, whatever step the exchange was at when the failure surfaced.
            ClientConnectionFailedException client => new ExchangeError(ExchangePhase.ClientRequest, client.Message, IsTransient: true, client),
            MinDataRateException slow => new ExchangeError(slow.Phase, slow.Message, IsTransient: false, slow),
            BodyTooLargeException tooLarge => new ExchangeError(phase, tooLarge.Message, IsTransient: false, tooLarge),
            HeaderListTooLargeException headers => new ExchangeError(phase, headers.Message, IsTransient: false, headers),
            HttpProtocolException protocol => new ExchangeError(phase, "invalid HTTP: " + protocol.Message, IsTransient: false, protocol),
            RequestNotRetriedException notRetried => new ExchangeError(phase, notRetried.Message, IsTransient: true, notRetried),
            TrailerListTooLargeException trailers => new ExchangeError(phase, trailers.Message, IsTransient: false, trailers),
            SocketException socket => DescribeSocket(phase, socket),
            AuthenticationException auth => new ExchangeError(phase, "TLS handshake failed: " + auth.Message, IsTransient: false, auth),
            IOException { InnerException: SocketException socket } => DescribeSocket(phase, socket),
            IOException io => new ExchangeError(phase, io.Message, IsTransient: true, io),
            OperationCanceledException canceled => new ExchangeError(phase, "cancelled", IsTransient: true, canceled),
            _ => new ExchangeError(phase, exception.Message, IsTransient: false, exception),
        };
    }

    /// <summary>
    /// Whether <paramref name="exception"/> is a programming error rather than a network failure: its stack trace is what
    /// a report needs, so it is logged whole. <see cref="InvalidOperationException"/> is not counted here: some closed
    /// pipes and streams raise it when a connection ends under an operation.
    /// </summary>
    public static bool IsInternal(Exception exception) =>
        exception is NullReferenceException or ArgumentException or IndexOutOfRangeException or InvalidCastException
            or NotImplementedException or KeyNotFoundException;

    /// <summary>
    /// The status for a failure before any response byte went out: 504 for timeouts (RFC 9110 §15.6.5), 502 for
    /// everything else the origin side caused (§15.6.3), 413 for a request body over the buffering limit, 408 for a
    /// request body sent below the minimum data rate (§15.5.9: the client did not produce a request in time), 400 for a
    /// request body the client cut short (RFC 9112 §8: an incomplete message; to a client that half-closed), 431 for a
    /// request head over the HTTP/2 origin's SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §10.5.1, RFC 6585 §5).
    /// </summary>
    public static int StatusFor(ExchangeError error) => error switch
    {
        { Exception: MinDataRateException } when error.Phase == ExchangePhase.ClientRequest => 408,
        { Exception: ClientBodyEndedException } => 400,
        { Exception: BodyTooLargeException } when error.Phase == ExchangePhase.ClientRequest => 413,
        { Exception: HeaderListTooLargeException } => 431,
        { Exception: OperationCanceledException } when error.IsTransient && error.Phase is ExchangePhase.Connect or ExchangePhase.Tls or ExchangePhase.Response => 504,
        _ => 502,
    };

    /// <summary>The one-line reason the client reads: the origin and the phase, unless a hook failed (its own words).</summary>
    public static string DescribeForClient(HttpRequest request, ExchangeError error) =>
        error.Phase == ExchangePhase.Addon
            ? error.Message
            : $"{request.Host}:{request.Port.ToString(CultureInfo.InvariantCulture)}: {error.Message} (phase: {PhaseName(error.Phase)})";

    private static string PhaseName(ExchangePhase phase) => phase switch
    {
        ExchangePhase.Dns => "dns",
        ExchangePhase.Connect => "connect",
        ExchangePhase.Tls => "tls",
        ExchangePhase.Request => "request",
        ExchangePhase.Response => "response",
        ExchangePhase.ClientRequest => "client request",
        ExchangePhase.ClientResponse => "client response",
        _ => "addon",
    };

    private static ExchangeError DescribeSocket(ExchangePhase phase, SocketException socket) => socket.SocketErrorCode switch
    {
        SocketError.HostNotFound or SocketError.NoData => new ExchangeError(ExchangePhase.Dns, "host name not found", IsTransient: false, socket),
        SocketError.TryAgain => new ExchangeError(ExchangePhase.Dns, "DNS lookup failed temporarily", IsTransient: true, socket),
        SocketError.ConnectionRefused => new ExchangeError(phase, "connection refused", IsTransient: true, socket),
        SocketError.ConnectionReset => new ExchangeError(phase, "connection reset by peer", IsTransient: true, socket),
        SocketError.TimedOut => new ExchangeError(phase, "timed out", IsTransient: true, socket),
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => new ExchangeError(phase, "host unreachable", IsTransient: true, socket),
        _ => new ExchangeError(phase, socket.Message, IsTransient: true, socket),
    };
}
