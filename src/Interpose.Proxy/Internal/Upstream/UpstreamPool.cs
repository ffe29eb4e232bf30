using System.Collections.Concurrent;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Everything that makes one origin connection different from another: two requests may share a connection only
/// when all of it is equal.
/// </summary>
/// <param name="Scheme">http, https, or tcp for raw relays.</param>
/// <param name="Host">The origin's host.</param>
/// <param name="Port">The origin's port.</param>
/// <param name="Sni">The server name sent in TLS, if any.</param>
/// <param name="Protocol">What the connection was opened to speak (the ALPN offer): an HTTP/1.1 connection and one
/// that may be HTTP/2 are never mixed, even to the same origin.</param>
internal readonly record struct UpstreamKey(string Scheme, string Host, int Port, string? Sni, UpstreamProtocol Protocol = UpstreamProtocol.Http11)
{
    public bool IsTls => Scheme == "https";
}

/// <summary>What an origin connection is opened to speak: the ALPN offer over TLS, or HTTP/2 by prior knowledge.</summary>
internal enum UpstreamProtocol
{
    /// <summary>ALPN http/1.1 only (or plain HTTP/1.1).</summary>
    Http11,

    /// <summary>ALPN h2, http/1.1: the origin picks (RFC 9113 §3.2).</summary>
    Http2OrHttp11,

    /// <summary>HTTP/2 with prior knowledge on a plain connection (h2c, RFC 9113 §3.3).</summary>
    Http2PriorKnowledge,
}

/// <summary>
/// Idle origin connections kept for reuse, bounded per origin and in total, expired after an idle time. A connection
/// is in the pool or owned by one exchange, never both.
/// </summary>
internal sealed class UpstreamPool(TimeProvider time, TimeSpan idleTimeout, int maxPerKey, int maxTotal) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<UpstreamKey, IdleStack> _idle = new();

    // HTTP/2 connections by key, shared by many exchanges at once (a stream each); several per key when the origin's
    // stream limit is reached (SocketsHttpHandler's EnableMultipleHttp2Connections; a proxy concentrates clients).
    private readonly ConcurrentDictionary<UpstreamKey, Http2Origin> _http2 = new();
    private int _count;
    private volatile bool _disposed;

    /// <summary>One key's idle connections, the most recently used on top, and how many there are or are about to be.
    /// A connection given back first reserves its place under the cap, so that connections given back at the same
    /// moment never take the stack past it (a check of the count and a push apart from each other let them).</summary>
    /// <remarks>NOTE: an array-backed stack under a lock (held for a push or a pop), not a ConcurrentStack: that one
    /// allocates a node per push, a connection given back per exchange, 2.7% of a keep-alive proxy's allocated bytes
    /// (docs/performance.md, "What the proxy allocates per request").</remarks>
    private sealed class IdleStack
    {
        private readonly Lock _lock = new();
        private readonly Stack<UpstreamConnection> _connections = new();
        private int _count;

        public bool IsEmpty
        {
            get
            {
                lock (_lock)
                {
                    return _connections.Count == 0;
                }
            }
        }

        /// <summary>Takes a place for one more connection if fewer than <paramref name="cap"/> are held or reserved.</summary>
        public bool TryReserve(int cap)
        {
            var count = Volatile.Read(ref _count);
            while (count < cap)
            {
                var seen = Interlocked.CompareExchange(ref _count, count + 1, count);
                if (seen == count)
                {
                    return true;
                }

                count = seen;
            }

            return false;
        }

        /// <summary>Gives back a place reserved and not used.</summary>
        public void Unreserve() => Interlocked.Decrement(ref _count);

        /// <summary>Pushes a connection into the place it reserved (<see cref="TryReserve"/>).</summary>
        public void PushReserved(UpstreamConnection connection)
        {
            lock (_lock)
            {
                _connections.Push(connection);
            }
        }

        public bool TryPop([System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out UpstreamConnection connection)
        {
            lock (_lock)
            {
                if (!_connections.TryPop(out connection))
                {
                    return false;
                }
            }

            Interlocked.Decrement(ref _count);
            return true;
        }
    }

    /// <summary>HTTP/2 connections open to one origin key, and the gate that lets one connect at a time.</summary>
#pragma warning disable CA1001 // The gate's wait handle is never asked for, so it holds nothing to dispose.
    private sealed class Http2Origin
#pragma warning restore CA1001
    {
        public readonly List<Http2UpstreamConnection> Connections = [];
        public readonly SemaphoreSlim ConnectGate = new(1, 1);

        // The origin answered an h2 offer with http/1.1: later requests stop queueing at the gate (SocketsHttpHandler's
        // HandleHttp11Downgrade).
        public volatile bool SpeaksHttp11;
    }

    /// <summary>HTTP/2 origin connections open (for tests and metrics).</summary>
    public int Http2ConnectionCount => _http2.Values.Sum(static o => { lock (o.Connections) { return o.Connections.Count; } });

    /// <summary>A stream on a pooled HTTP/2 connection for <paramref name="key"/> with a free slot, if any.</summary>
    public Http2UpstreamStream? TryOpenHttp2Stream(UpstreamKey key)
    {
        if (!_http2.TryGetValue(key, out var origin))
        {
            return null;
        }

        lock (origin.Connections)
        {
            for (var i = origin.Connections.Count - 1; i >= 0; i--)
            {
                var connection = origin.Connections[i];
                if (connection.IsGoingAway)
                {
                    // GOAWAY, failed or closed: it takes no new streams (its own streams still finish).
                    origin.Connections.RemoveAt(i);
                    continue;
                }

                if (connection.TryOpenStream() is { } stream)
                {
                    return stream;
                }
            }
        }

        return null;
    }

    /// <summary>True when an HTTP/2 connection to <paramref name="key"/> is open (it may be full).</summary>
    public bool HasHttp2(UpstreamKey key)
    {
        if (!_http2.TryGetValue(key, out var origin))
        {
            return false;
        }

        lock (origin.Connections)
        {
            return origin.Connections.Exists(static c => !c.IsGoingAway);
        }
    }

    /// <summary>True when an earlier connect with an h2 offer to <paramref name="key"/> got http/1.1.</summary>
    public bool SpeaksHttp11(UpstreamKey key) => _http2.TryGetValue(key, out var origin) && origin.SpeaksHttp11;

    /// <summary>Records that <paramref name="key"/>'s origin chose http/1.1 over h2.</summary>
    public void MarkHttp11(UpstreamKey key) => _http2.GetOrAdd(key, static _ => new Http2Origin()).SpeaksHttp11 = true;

    /// <summary>
    /// Waits for the right to open a connection to <paramref name="key"/> (one at a time per key, so a burst of
    /// streams shares the first connection instead of each opening its own); dispose the result to let the next in.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async ValueTask<IDisposable> EnterHttp2ConnectAsync(UpstreamKey key, CancellationToken cancellationToken)
    {
        var gate = _http2.GetOrAdd(key, static _ => new Http2Origin()).ConnectGate;
        await gate.WaitAsync(cancellationToken);
        return new GateRelease(gate);
    }

    private sealed class GateRelease(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release();
            }
        }
    }

    /// <summary>Adds a new HTTP/2 connection; false when the pool is shutting down (the caller closes it).</summary>
    public bool AddHttp2(Http2UpstreamConnection connection)
    {
        if (_disposed)
        {
            return false;
        }

        var origin = _http2.GetOrAdd(connection.Key, static _ => new Http2Origin());
        lock (origin.Connections)
        {
            origin.Connections.Add(connection);
        }

        return true;
    }

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
        if (connection.Http2 is not null)
        {
            // An HTTP/2 stream ends; its connection never left the pool.
            await connection.DisposeAsync();
            return;
        }

        var stack = _idle.GetOrAdd(connection.Key, static _ => new IdleStack());
        if (_disposed || !stack.TryReserve(maxPerKey))
        {
            await connection.DisposeAsync();
            return;
        }

        if (Interlocked.Increment(ref _count) > maxTotal)
        {
            Interlocked.Decrement(ref _count);
            stack.Unreserve();
            await connection.DisposeAsync();
            return;
        }

        if (!connection.TryBecomeIdle(time.GetTimestamp()))
        {
            Interlocked.Decrement(ref _count);
            stack.Unreserve();
            return;
        }

        stack.PushReserved(connection);
    }

    /// <summary>Closes idle connections past their idle time (called periodically).</summary>
    /// <remarks>HTTP/2 connections close themselves when idle (their reader loop), and are dropped here once closed.</remarks>
    public async ValueTask SweepAsync()
    {
        foreach (var origin in _http2.Values)
        {
            lock (origin.Connections)
            {
                origin.Connections.RemoveAll(static c => c.IsClosed);
            }
        }

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

                await CloseIdleAsync(connection);
            }

            for (var i = keep.Count - 1; i >= 0; i--)
            {
                // Connections given back meanwhile may have taken the places these left: the cap holds all the same.
                if (stack.TryReserve(maxPerKey))
                {
                    stack.PushReserved(keep[i]);
                }
                else
                {
                    await CloseIdleAsync(keep[i]);
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        foreach (var origin in _http2.Values)
        {
            Http2UpstreamConnection[] connections;
            lock (origin.Connections)
            {
                connections = [.. origin.Connections];
                origin.Connections.Clear();
            }

            foreach (var connection in connections)
            {
                await connection.DisposeAsync();
            }
        }

        foreach (var stack in _idle.Values)
        {
            while (stack.TryPop(out var connection))
            {
                await CloseIdleAsync(connection);
            }
        }
    }

    /// <summary>Closes a connection taken out of its idle stack for good: it no longer counts, and unless its idle read
    /// closed it already, it is disposed here.</summary>
    private async ValueTask CloseIdleAsync(UpstreamConnection connection)
    {
        Interlocked.Decrement(ref _count);
        if (connection.TryTakeFromIdle())
        {
            await connection.DisposeAsync();
        }
    }
}
