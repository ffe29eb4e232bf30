namespace Interpose.Proxy.Internal;

/// <summary>
/// A cancellation token that fires when the owner's token does or when a deadline of the proxy's
/// <see cref="TimeProvider"/> passes; <see cref="TimedOut"/> tells the two apart.
/// </summary>
internal sealed class TimeoutScope : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly ITimer _timer;
    private volatile bool _timedOut;

    public TimeoutScope(TimeProvider time, TimeSpan timeout, CancellationToken parent)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(parent);
        _timer = time.CreateTimer(static state => ((TimeoutScope)state!).Fire(), this, Infinite(timeout), Timeout.InfiniteTimeSpan);
    }

    public CancellationToken Token => _cts.Token;

    public bool TimedOut => _timedOut;

    /// <summary>Restarts the countdown with a new timeout (e.g. from idle to request-head).</summary>
    public void Reset(TimeSpan timeout) => _timer.Change(Infinite(timeout), Timeout.InfiniteTimeSpan);

    public void Dispose()
    {
        _timer.Dispose();
        _cts.Dispose();
    }

    private static TimeSpan Infinite(TimeSpan timeout) => timeout <= TimeSpan.Zero ? Timeout.InfiniteTimeSpan : timeout;

    private void Fire()
    {
        _timedOut = true;
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The scope ended as the timer fired: nothing left to cancel.
        }
    }
}
