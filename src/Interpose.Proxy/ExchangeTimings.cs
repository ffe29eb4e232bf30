namespace Interpose.Proxy;

/// <summary>
/// When each step of an exchange happened, as timestamps of <see cref="ProxyOptions.TimeProvider"/>
/// (<see cref="TimeProvider.GetTimestamp"/>); zero when the step did not happen (e.g. no DNS for a reused
/// connection). Use <see cref="Elapsed(long, long)"/> to turn two into a duration.
/// </summary>
public sealed class ExchangeTimings
{
    private readonly TimeProvider _time;

    internal ExchangeTimings(TimeProvider time) => _time = time;

    /// <summary>The request head was received from the client.</summary>
    public long RequestStarted { get; internal set; }

    /// <summary>Name resolution finished (new connections only).</summary>
    public long DnsDone { get; internal set; }

    /// <summary>The TCP connection to the origin was established (new connections only).</summary>
    public long Connected { get; internal set; }

    /// <summary>The TLS handshake with the origin finished (new TLS connections only).</summary>
    public long TlsDone { get; internal set; }

    /// <summary>The request (head and body) was sent to the origin.</summary>
    public long RequestSent { get; internal set; }

    /// <summary>The first byte of the response head arrived.</summary>
    public long FirstByte { get; internal set; }

    /// <summary>The exchange finished (last response byte written to the client, or failed).</summary>
    public long Done { get; internal set; }

    /// <summary>The duration between two timestamps of this exchange, or <see cref="TimeSpan.Zero"/> if either is missing.</summary>
    /// <param name="from">The earlier timestamp.</param>
    /// <param name="to">The later timestamp.</param>
    /// <returns>The elapsed time.</returns>
    public TimeSpan Elapsed(long from, long to) => from == 0 || to == 0 ? TimeSpan.Zero : _time.GetElapsedTime(from, to);

    /// <summary>The whole duration, from request start to done.</summary>
    public TimeSpan Total => Elapsed(RequestStarted, Done);
}
