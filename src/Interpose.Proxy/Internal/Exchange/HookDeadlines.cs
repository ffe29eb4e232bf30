using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>
/// What bounds addon hook calls for one running server: the timeout, the clock, where a timeout is counted and logged,
/// and idle <see cref="TimeoutScope"/>s to lend to the callers that do not keep one (connection events, the upstream
/// connector), so that a hook call allocates nothing when the hook completes synchronously.
/// </summary>
internal sealed class HookDeadlines(TimeProvider time, TimeSpan timeout, ProxyMetrics metrics, ILogger logger) : IDisposable
{
    /// <summary>
    /// Idle scopes kept at most: 256, a scope per hook call in flight at once on a busy proxy (a few per core); past
    /// it, a returned scope is disposed, so a burst does not leave its timers behind for the server's lifetime.
    /// </summary>
    private const int MaxIdleScopes = 256;

    private readonly ConcurrentBag<TimeoutScope> _idle = [];
    private int _idleCount;
    private bool _disposed;

    /// <summary>How long one hook call may take; zero or negative: unbounded.</summary>
    public TimeSpan Timeout => timeout;

    /// <summary>A disarmed scope; give it back with <see cref="Return"/>.</summary>
    public TimeoutScope Rent()
    {
        if (_idle.TryTake(out var scope))
        {
            Interlocked.Decrement(ref _idleCount);
            return scope;
        }

        return new TimeoutScope(time);
    }

    /// <summary>Takes back a disarmed scope (its token may have been cancelled: <see cref="TimeoutScope.Prepare"/> replaces it).</summary>
    public void Return(TimeoutScope scope)
    {
        if (Volatile.Read(ref _disposed) || Interlocked.Increment(ref _idleCount) > MaxIdleScopes)
        {
            Interlocked.Decrement(ref _idleCount);
            scope.Dispose();
            return;
        }

        _idle.Add(scope);
    }

    /// <summary>A hook call ran past <see cref="Timeout"/>: counted here; logged by whoever decides what it means.</summary>
    public void TimedOut(string addon, string hook) => metrics.AddonTimedOut(addon, hook);

    /// <summary>A notification hook ran past <see cref="Timeout"/>: counted and logged; the caller goes on.</summary>
    public void NotificationTimedOut(string addon, string hook)
    {
        metrics.AddonTimedOut(addon, hook);
        ProxyLog.AddonHookTimedOut(logger, addon, hook, timeout.TotalSeconds);
    }

    public void Dispose()
    {
        Volatile.Write(ref _disposed, true);
        while (_idle.TryTake(out var scope))
        {
            scope.Dispose();
        }
    }
}
