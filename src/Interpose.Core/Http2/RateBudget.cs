namespace Interpose.Core.Http2;

/// <summary>Counts events in a fixed window and says when a budget is spent: rapid reset, PING/SETTINGS floods, empty
/// frames (see <see cref="Http2Limits"/>). Time is passed in (from the connection's TimeProvider), so the type is
/// pure and testable. A fixed window, like Kestrel's tick count: at most 2 × budget can pass across a window edge,
/// which is still bounded.</summary>
public sealed class RateBudget
{
    private readonly int _budget;
    private readonly TimeSpan _window;
    private TimeSpan _windowStart;
    private int _count;
    private bool _started;

    /// <summary>Creates a budget of <paramref name="budget"/> events per <paramref name="window"/>.</summary>
    /// <param name="budget">Events allowed per window (positive).</param>
    /// <param name="window">The window length (positive).</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is not positive.</exception>
    public RateBudget(int budget, TimeSpan window)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budget);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        _budget = budget;
        _window = window;
    }

    /// <summary>Events counted in the current window.</summary>
    public int Count => _count;

    /// <summary>Records one event at <paramref name="now"/>.</summary>
    /// <param name="now">A monotonic timestamp (e.g. <c>TimeProvider.GetElapsedTime(start)</c>).</param>
    /// <returns><see langword="true"/> while within budget; <see langword="false"/> once the event exceeds it (the
    /// caller sends GOAWAY ENHANCE_YOUR_CALM).</returns>
    public bool TryRecord(TimeSpan now)
    {
        if (!_started || now - _windowStart >= _window)
        {
            _started = true;
            _windowStart = now;
            _count = 0;
        }

        _count++;
        return _count <= _budget;
    }
}
