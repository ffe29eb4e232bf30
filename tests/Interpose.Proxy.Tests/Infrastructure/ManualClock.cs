namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>
/// A <see cref="TimeProvider"/> whose time moves only when the test says so: timestamps, the wall clock and timers.
/// Timers due by the new time fire, in the test's thread, inside <see cref="Advance"/>.
/// </summary>
public sealed class ManualClock : TimeProvider
{
    private readonly Lock _lock = new();
    private readonly List<ManualTimer> _timers = [];
    private readonly List<(TimeSpan DueIn, int Times, TaskCompletionSource Armed)> _waiters = [];
    private readonly List<(object? State, TimeSpan DueIn)> _armings = [];
    private readonly List<(Func<object?, bool> Owner, int Times, TaskCompletionSource<TimeSpan> Armed)> _ownerWaiters = [];
    private readonly DateTimeOffset _start = DateTimeOffset.UtcNow;
    private TimeSpan _now;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp()
    {
        lock (_lock)
        {
            return _now.Ticks;
        }
    }

    public override DateTimeOffset GetUtcNow()
    {
        lock (_lock)
        {
            return _start + _now;
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        lock (_lock)
        {
            _timers.Add(timer);
        }

        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>
    /// Moves time forward, firing every timer that falls due on the way, in order, each at its due time (the clock
    /// reads that time while its callback runs), on the test's thread.
    /// </summary>
    public void Advance(TimeSpan by)
    {
        TimeSpan target;
        lock (_lock)
        {
            target = _now + by;
        }

        while (true)
        {
            ManualTimer? next = null;
            lock (_lock)
            {
                foreach (var timer in _timers)
                {
                    if (timer.Due is { } at && at <= target && (next is null || at < next.Due))
                    {
                        next = timer;
                    }
                }

                if (next is null)
                {
                    _now = target;
                    return;
                }

                _now = next.Due!.Value > _now ? next.Due.Value : _now;
                next.Due = next.Period > TimeSpan.Zero ? _now + next.Period : null;
            }

            next.Fire();
        }
    }

    /// <summary>Completes once a timer has been armed (ever) to fire <paramref name="dueIn"/> after it was armed.</summary>
    public Task ArmedAsync(TimeSpan dueIn) => ArmedAsync(dueIn, times: 1);

    /// <summary>Completes once timers have been armed <paramref name="times"/> times in all (ever) to fire
    /// <paramref name="dueIn"/> after they were armed: a timer armed again for a second use.</summary>
    public Task ArmedAsync(TimeSpan dueIn, int times)
    {
        lock (_lock)
        {
            if (ArmedCount(dueIn) >= times)
            {
                return Task.CompletedTask;
            }

            var armed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((dueIn, times, armed));
            return armed.Task;
        }
    }

    /// <summary>
    /// Completes with the due time of the <paramref name="times"/>-th arming (ever) of a timer whose callback state
    /// matches <paramref name="owner"/>, whatever that due time is: for a timer that re-arms itself for what is left
    /// of a bound, which depends on when the code under test read the clock (another timer firing on the way moves it).
    /// </summary>
    public Task<TimeSpan> ArmedAsync(Func<object?, bool> owner, int times)
    {
        lock (_lock)
        {
            if (NthArming(owner, times) is { } due)
            {
                return Task.FromResult(due);
            }

            var armed = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
            _ownerWaiters.Add((owner, times, armed));
            return armed.Task;
        }
    }

    private int ArmedCount(TimeSpan dueIn) => _armings.Count(a => a.DueIn == dueIn);

    private TimeSpan? NthArming(Func<object?, bool> owner, int times)
    {
        var seen = 0;
        foreach (var (state, dueIn) in _armings)
        {
            if (owner(state) && ++seen == times)
            {
                return dueIn;
            }
        }

        return null;
    }

    private void Arm(ManualTimer timer, TimeSpan dueTime, TimeSpan period)
    {
        lock (_lock)
        {
            timer.Period = period == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : period;
            timer.Due = dueTime == Timeout.InfiniteTimeSpan ? null : _now + dueTime;
            if (timer.Due is null)
            {
                return;
            }

            _armings.Add((timer.State, dueTime));
            for (var i = _ownerWaiters.Count - 1; i >= 0; i--)
            {
                if (NthArming(_ownerWaiters[i].Owner, _ownerWaiters[i].Times) is { } due)
                {
                    _ownerWaiters[i].Armed.TrySetResult(due);
                    _ownerWaiters.RemoveAt(i);
                }
            }

            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].DueIn == dueTime && ArmedCount(dueTime) >= _waiters[i].Times)
                {
                    _waiters[i].Armed.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    private void Remove(ManualTimer timer)
    {
        lock (_lock)
        {
            _timers.Remove(timer);
        }
    }

    private sealed class ManualTimer(ManualClock clock, TimerCallback callback, object? state) : ITimer
    {
        public TimeSpan? Due { get; set; }

        public TimeSpan Period { get; set; }

        public object? State => state;

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            clock.Arm(this, dueTime, period);
            return true;
        }

        public void Dispose() => clock.Remove(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
