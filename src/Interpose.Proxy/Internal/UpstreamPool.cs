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

/// <summary>An open connection to an origin. Disposing it closes it and tells the addons, once.</summary>
internal sealed class UpstreamConnection(UpstreamKey key, Transport transport, ServerConnection info, ProxyRuntime runtime) : IAsyncDisposable
{
    private int _disposed;

    public UpstreamKey Key { get; } = key;

    public Transport Transport { get; } = transport;

    public ServerConnection Info { get; } = info;

    /// <summary>True when taken from the pool (it may have been closed by the origin meanwhile).</summary>
    public bool IsReused { get; set; }

    /// <summary>When it was put back in the pool, as a <see cref="TimeProvider"/> timestamp.</summary>
    public long IdleSince { get; set; }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Transport.DisposeAsync();
        await runtime.Addons.NotifyAsync("ServerDisconnectedAsync", Info, static (a, s, ct) => a.ServerDisconnectedAsync(s, ct), runtime.Logger, CancellationToken.None);
    }
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
            if (time.GetElapsedTime(connection.IdleSince) < idleTimeout && connection.Transport.IsIdleAndOpen())
            {
                connection.IsReused = true;
                return connection;
            }

            await connection.DisposeAsync();
        }

        return null;
    }

    /// <summary>Gives back a connection whose last exchange ended cleanly; closes it if the pool is full.</summary>
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

        connection.IdleSince = time.GetTimestamp();
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
                if (time.GetElapsedTime(connection.IdleSince) < idleTimeout && connection.Transport.IsIdleAndOpen())
                {
                    keep.Add(connection);
                }
                else
                {
                    Interlocked.Decrement(ref _count);
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
                await connection.DisposeAsync();
            }
        }
    }
}
