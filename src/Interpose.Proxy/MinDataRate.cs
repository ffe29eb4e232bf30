using System.Globalization;

namespace Interpose.Proxy;

/// <summary>
/// The slowest a peer may move a message body, as Kestrel's <c>MinDataRate</c>: averaged over the time the proxy
/// spent waiting on that peer since the body started, and enforced once that time passes <see cref="GracePeriod"/>.
/// </summary>
/// <remarks>
/// Only waits on the measured peer count: for a request body, the time the proxy waits for the client to send more;
/// for a response, the time the proxy waits for writes to the client to complete. Time the proxy spends waiting on the
/// other side (an origin slow to read the request body or to send the response) is not held against the client.
/// </remarks>
public sealed class MinDataRate
{
    /// <summary>A minimum rate of <paramref name="bytesPerSecond"/>, enforced after <paramref name="gracePeriod"/>.</summary>
    /// <param name="bytesPerSecond">The average rate the peer must keep, in bytes per second; greater than 0.</param>
    /// <param name="gracePeriod">How long the peer may be slower at first (connection start-up, TCP slow start); 0 or more.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytesPerSecond"/> is not a positive finite number,
    /// or <paramref name="gracePeriod"/> is negative.</exception>
    public MinDataRate(double bytesPerSecond, TimeSpan gracePeriod)
    {
        if (!double.IsFinite(bytesPerSecond) || bytesPerSecond <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bytesPerSecond), bytesPerSecond, "the rate must be a positive number of bytes per second");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(gracePeriod, TimeSpan.Zero);
        BytesPerSecond = bytesPerSecond;
        GracePeriod = gracePeriod;
    }

    /// <summary>The average rate the peer must keep, in bytes per second.</summary>
    public double BytesPerSecond { get; }

    /// <summary>How long (of waiting on the peer) before the rate is enforced.</summary>
    public TimeSpan GracePeriod { get; }

    /// <summary>The rate and grace period, e.g. "240 B/s after 5 s".</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{BytesPerSecond} B/s after {GracePeriod.TotalSeconds} s");
}
