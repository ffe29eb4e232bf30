using System.Collections.Concurrent;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Everything that makes one origin connection different from another: two requests may share a connection only
/// when all of it is equal.
/// </summary>
internal readonly record struct UpstreamKey(string Scheme, string Host, int Port, string? Sni)
{
    public bool IsTls => Scheme == "https";
}

/// <summary>
/// Idle origin connections kept for reuse, bounded per origin and in total, expired after an idle time. A connection
/// is in the pool or owned by one exchange, never both.
/// </summary>
internal sealed class UpstreamPool(TimeProvider time, TimeSpan idleTimeout, int maxPerKey, int maxTotal) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<UpstreamKey, ConcurrentStack<UpstreamConnection>> _idle = new();
    private int _count;
    private volatile bool _disposed;

    public int IdleCount => Volatile.Read(ref _count);

    /// <summary>True when an idle connection for <paramref name="key"/> is waiting (it may still turn out closed).</summary>
    public bool HasIdle(UpstreamKey key) => _idle.TryGetValue(key, out var stack) && !stack.IsEmpty;

    /// <summary>Takes the most recently used live idle connection for <paramref name="key"/>, if any.</summary>
    public async ValueTask<UpstreamConnection?> TryRentAsync(UpstreamKey key)
    {
        if (!_idle.TryGetValue(key, out var stack))
        {
            return null;
        }

        while (stack.TryPop(out var connection))
        {
            Interlocked.Decrement(ref _count);
            if (!connection.TryTakeFromIdle())
            {
                // Its idle read found the origin closing or talking unasked, and closed it.
                continue;
            }

            if (time.GetElapsedTime(connection.IdleSince) < idleTimeout)
            {
                return connection;
            }

            await connection.DisposeAsync();
        }

        return null;
    }

    /// <summary>
    /// Gives back a connection whose last exchange ended cleanly; closes it if the pool is full, or if the origin sent
    /// more than the response (see <see cref="UpstreamConnection"/>).
    /// </summary>
    public async ValueTask ReturnAsync(UpstreamConnection connection)
    {
        var stack = _idle.GetOrAdd(connection.Key, static _ => new ConcurrentStack<UpstreamConnection>());
        if (_disposed || stack.Count >= maxPerKey)
        {
            await connection.DisposeAsync();
            return;
        }

        if (Interlocked.Increment(ref _count) > maxTotal)
        {
            Interlocked.Decrement(ref _count);
            await connection.DisposeAsync();
            return;
        }

        if (!connection.TryBecomeIdle(time.GetTimestamp()))
        {
            Interlocked.Decrement(ref _count);
            return;
        }

        stack.Push(connection);
    }

    /// <summary>Closes idle connections past their idle time (called periodically).</summary>
    public async ValueTask SweepAsync()
    {
        foreach (var stack in _idle.Values)
        {
            // Stacks hold the freshest on top; popping everything and pushing back the live ones keeps it simple.
            var keep = new List<UpstreamConnection>();
            while (stack.TryPop(out var connection))
            {
                if (time.GetElapsedTime(connection.IdleSince) < idleTimeout && !connection.IsClosed)
                {
                    keep.Add(connection);
                    continue;
                }

                Interlocked.Decrement(ref _count);
                if (connection.TryTakeFromIdle())
                {
                    await connection.DisposeAsync();
                }
            }

            for (var i = keep.Count - 1; i >= 0; i--)
            {
                stack.Push(keep[i]);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        foreach (var stack in _idle.Values)
        {
            while (stack.TryPop(out var connection))
            {
                Interlocked.Decrement(ref _count);
                if (connection.TryTakeFromIdle())
                {
                    await connection.DisposeAsync();
                }
            }
        }
    }
}
