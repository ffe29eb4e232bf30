namespace Interpose.Core.Http2;

/// <summary>Returns receive-window credit to the peer in batches: bytes the peer sent are debited from a receive
/// <see cref="FlowWindow"/> on arrival, and credited back only when they have been consumed (for a proxy: written
/// to the other side), so the memory a stream can hold is bounded by its window (reference §2, "Proxy lesson").
/// A WINDOW_UPDATE goes out once the consumed amount reaches the threshold — Kestrel's half the window — not per frame.</summary>
public sealed class ReceiveCredit
{
    private readonly FlowWindow _window;
    private readonly int _threshold;
    private int _pending;

    /// <summary>Creates the batcher for <paramref name="window"/>.</summary>
    /// <param name="window">The receive window (stream or connection).</param>
    /// <param name="threshold">Credit to accumulate before a WINDOW_UPDATE; Kestrel uses half the initial window.</param>
    /// <exception cref="ArgumentNullException"><paramref name="window"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threshold"/> is not positive.</exception>
    public ReceiveCredit(FlowWindow window, int threshold)
    {
        ArgumentNullException.ThrowIfNull(window);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threshold);
        _window = window;
        _threshold = threshold;
    }

    /// <summary>Credit consumed but not yet returned.</summary>
    public int Pending => _pending;

    /// <summary>Forgets pending credit (its window was reset for a new stream).</summary>
    internal void Reset() => _pending = 0;

    /// <summary>Records <paramref name="bytes"/> consumed by the reader of the stream.</summary>
    /// <param name="bytes">Octets consumed (a DATA frame's whole length counts, padding included, RFC 9113 §6.1).</param>
    /// <returns>The increment to send in a WINDOW_UPDATE now, or 0 to wait for more.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytes"/> is negative.</exception>
    /// <exception cref="Http2ConnectionException">Returning the credit would overflow the connection window (a caller bug:
    /// more consumed than received).</exception>
    /// <exception cref="Http2StreamException">The same on a stream window.</exception>
    public int OnConsumed(int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        _pending += bytes;
        if (_pending < _threshold)
        {
            return 0;
        }

        int increment = _pending;
        _pending = 0;
        _window.Increase(increment);
        return increment;
    }
}
