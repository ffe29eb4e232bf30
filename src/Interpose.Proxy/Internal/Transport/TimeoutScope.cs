namespace Interpose.Proxy.Internal;

/// <summary>
/// A cancellation token that fires when the owner's token does or when a deadline of the proxy's
/// <see cref="TimeProvider"/> passes; <see cref="TimedOut"/> tells the two apart.
/// </summary>
/// <remarks>
/// One owner flow uses it at a time. It can be re-armed (<see cref="Arm"/> / <see cref="Disarm"/>) so that a
/// keep-alive connection keeps one scope and one timer for all its exchanges instead of a linked
/// <see cref="CancellationTokenSource"/> and a timer per wait; its source is replaced only after it was actually
/// cancelled (a cancelled source cannot be reset).
/// </remarks>
internal sealed class TimeoutScope : IDisposable
{
    private readonly Lock _lock = new();
    private readonly ITimer _timer;
    private CancellationTokenSource _cts = new();
    private CancellationTokenRegistration _parent;
    private bool _armed;
    private bool _disposed;
    private volatile bool _timedOut;

    /// <summary>A disarmed scope: <see cref="Arm"/> before each use.</summary>
    public TimeoutScope(TimeProvider time)
    {
        _timer = time.CreateTimer(static state => ((TimeoutScope)state!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>An armed scope, for a single use.</summary>
    public TimeoutScope(TimeProvider time, TimeSpan timeout, CancellationToken parent)
        : this(time)
    {
        Arm(timeout, parent);
    }

    /// <summary>The current use's token; read it after <see cref="Arm"/>.</summary>
    public CancellationToken Token => _cts.Token;

    public bool TimedOut => _timedOut;

    /// <summary>Starts a use: a fresh (or reset) token, cancelled by <paramref name="parent"/> or after <paramref name="timeout"/>.</summary>
    public void Arm(TimeSpan timeout, CancellationToken parent)
    {
        Prepare();
        Start(timeout, parent);
    }

    /// <summary>
    /// The first half of <see cref="Arm"/>: a fresh (or reset) token that nothing cancels yet. An addon hook gets it
    /// before the call, and <see cref="Start"/> runs only when the hook did not complete synchronously, so that a
    /// hook that returns a completed task costs no timer change and no registration.
    /// </summary>
    public CancellationToken Prepare()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_cts.TryReset())
            {
                _cts.Dispose();
                _cts = new CancellationTokenSource();
            }

            _timedOut = false;
            return _cts.Token;
        }
    }

    /// <summary>The second half of <see cref="Arm"/>: the prepared token is cancelled by <paramref name="parent"/> or after <paramref name="timeout"/>.</summary>
    public void Start(TimeSpan timeout, CancellationToken parent)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _armed = true;
            _timer.Change(Infinite(timeout), Timeout.InfiniteTimeSpan);
        }

        // Outside the lock: an already-cancelled parent runs the callback at once, and it takes the lock.
        _parent = parent.UnsafeRegister(static state => ((TimeoutScope)state!).CancelFromParent(), this);
    }

    /// <summary>Ends a use: neither the timer nor the parent cancels the token any more.</summary>
    public void Disarm()
    {
        lock (_lock)
        {
            _armed = false;
            if (!_disposed)
            {
                _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        // Outside the lock: disposing a registration waits for its callback if it is running, and that takes the lock.
        _parent.Dispose();
        _parent = default;
    }

    /// <summary>Restarts the countdown with a new timeout (e.g. from idle to request-head).</summary>
    public void Reset(TimeSpan timeout)
    {
        lock (_lock)
        {
            if (_armed && !_disposed)
            {
                _timer.Change(Infinite(timeout), Timeout.InfiniteTimeSpan);
            }
        }
    }

    public void Dispose()
    {
        Disarm();
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _timer.Dispose();
            _cts.Dispose();
        }
    }

    private static TimeSpan Infinite(TimeSpan timeout) => timeout <= TimeSpan.Zero ? Timeout.InfiniteTimeSpan : timeout;

    private void Fire() => Cancel(timedOut: true);

    private void CancelFromParent() => Cancel(timedOut: false);

    private void Cancel(bool timedOut)
    {
        // NOTE: under the lock, so a late timer or parent callback cannot cancel a later use after Disarm/Arm. The
        // token's own callbacks (pipe and socket reads) complete their awaiters asynchronously; the lock is reentrant
        // should one of them run inline.
        lock (_lock)
        {
            if (!_armed || _disposed)
            {
                return;
            }

            if (timedOut)
            {
                _timedOut = true;
            }

            _cts.Cancel();
        }
    }
}
