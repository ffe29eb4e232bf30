using Interpose.Proxy.Internal;

namespace Interpose.Proxy.Tests;

/// <summary>The re-armed timeout a keep-alive connection keeps for all its exchanges.</summary>
public sealed class TimeoutScopeTests
{
    [Fact]
    public void Rearming_an_uncancelled_scope_reuses_its_token_source()
    {
        var time = new ManualTimeProvider();
        using var scope = new TimeoutScope(time);
        scope.Arm(TimeSpan.FromSeconds(5), CancellationToken.None);
        var first = scope.Token;
        scope.Disarm();
        scope.Arm(TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.Equal(first, scope.Token);
        Assert.False(scope.Token.IsCancellationRequested);
    }

    [Fact]
    public void A_timeout_cancels_and_the_next_use_gets_a_fresh_token()
    {
        var time = new ManualTimeProvider();
        using var scope = new TimeoutScope(time);
        scope.Arm(TimeSpan.FromSeconds(5), CancellationToken.None);
        time.Timer!.Fire();

        Assert.True(scope.Token.IsCancellationRequested);
        Assert.True(scope.TimedOut);

        scope.Disarm();
        scope.Arm(TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.False(scope.Token.IsCancellationRequested);
        Assert.False(scope.TimedOut);
    }

    [Fact]
    public void The_parent_cancels_without_a_timeout()
    {
        var time = new ManualTimeProvider();
        using var parent = new CancellationTokenSource();
        using var scope = new TimeoutScope(time);
        scope.Arm(TimeSpan.FromSeconds(5), parent.Token);
        parent.Cancel();

        Assert.True(scope.Token.IsCancellationRequested);
        Assert.False(scope.TimedOut);
    }

    [Fact]
    public void An_already_cancelled_parent_cancels_at_once()
    {
        var time = new ManualTimeProvider();
        using var parent = new CancellationTokenSource();
        parent.Cancel();
        using var scope = new TimeoutScope(time, TimeSpan.FromSeconds(5), parent.Token);

        Assert.True(scope.Token.IsCancellationRequested);
    }

    [Fact]
    public void A_late_timer_or_parent_after_disarm_cancels_nothing()
    {
        var time = new ManualTimeProvider();
        using var parent = new CancellationTokenSource();
        using var scope = new TimeoutScope(time);
        scope.Arm(TimeSpan.FromSeconds(5), parent.Token);
        scope.Disarm();
        time.Timer!.Fire();
        parent.Cancel();

        Assert.False(scope.Token.IsCancellationRequested);
        Assert.False(scope.TimedOut);
        Assert.Equal(Timeout.InfiniteTimeSpan, time.Timer.DueTime);
    }

    [Fact]
    public void A_zero_timeout_means_none()
    {
        var time = new ManualTimeProvider();
        using var scope = new TimeoutScope(time, TimeSpan.Zero, CancellationToken.None);

        Assert.Equal(Timeout.InfiniteTimeSpan, time.Timer!.DueTime);
    }

    /// <summary>A clock whose one timer fires only when the test says so.</summary>
    private sealed class ManualTimeProvider : TimeProvider
    {
        public ManualTimer? Timer { get; private set; }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            Timer = new ManualTimer(callback, state, dueTime);
    }

    private sealed class ManualTimer(TimerCallback callback, object? state, TimeSpan dueTime) : ITimer
    {
        public TimeSpan DueTime { get; private set; } = dueTime;

        /// <summary>Runs the callback as a timer thread would (also a late one, after Change to infinite).</summary>
        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            DueTime = dueTime;
            return true;
        }

        public void Dispose()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
