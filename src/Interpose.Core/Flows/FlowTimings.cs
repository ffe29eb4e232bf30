namespace Interpose.Core.Flows;

/// <summary>
/// When each step of an HTTP flow happened, in milliseconds after <see cref="Flow.StartedAt"/> (the request head
/// arrived); null when the step did not happen (no DNS or connect on a reused connection, no TLS for plain HTTP) or is
/// not known.
/// </summary>
/// <param name="DnsDone">Name resolution finished.</param>
/// <param name="Connected">The TCP connection to the origin was established.</param>
/// <param name="TlsDone">The TLS handshake with the origin finished.</param>
/// <param name="RequestSent">The request (head and body) was sent.</param>
/// <param name="FirstByte">The first byte of the response head arrived.</param>
/// <param name="Done">The exchange ended.</param>
public sealed record FlowTimings(double? DnsDone, double? Connected, double? TlsDone, double? RequestSent, double? FirstByte, double? Done)
{
    /// <summary>No step known.</summary>
    public static FlowTimings Unknown { get; } = new(null, null, null, null, null, null);
}
