using System.Runtime.CompilerServices;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Store;

/// <summary>
/// Flows kept as objects in this process, bounded, gone when it ends: what <c>interpose run --web</c> shows without
/// <c>-w</c> (mitmweb keeps its flows in memory the same way). Nothing is serialized: a recorded flow is kept as the
/// recorder made it (flows are immutable records), and queries evaluate the filter on the objects.
/// </summary>
/// <remarks>
/// <code>
///  IFlowSink.WriteAsync / AppendAsync ─► lock { list (append order) + index by id; evict the oldest past a cap }
///  QueryAsync / CountAsync / DeleteAsync(filter) ─► lock { copy the references } ─► filter outside the lock
/// </code>
/// Past <see cref="MemoryFlowStoreOptions.MaxFlows"/> or <see cref="MemoryFlowStoreOptions.MaxBodyBytes"/> the oldest
/// flows are evicted: counted in <see cref="EvictedFlows"/>, reported to the <c>evicted</c> callback, and logged once
/// when the store first reaches a cap (again only after a delete or clear made room), not once per flow.
/// A flow appended again (a mark, a comment) replaces the stored one in place, keeping its position.
/// Queries return the flows as kept, bodies included whatever <see cref="FlowQuery.IncludeBodies"/> says: leaving
/// them out would cost a copy and save nothing.
/// NOTE: a lock around a linked list and a dictionary rather than a concurrent collection: the writer is one recorder
/// task, readers are the UI's requests, and every operation under the lock is O(1) except the reference copy of a
/// query (about a millisecond for 100,000 flows), so there is nothing to gain from cleverness.
/// </remarks>
public sealed class MemoryFlowStore : IFlowStore, IFlowSink
{
    /// <summary>Evicted flows a recorder's writes collect before they are announced without waiting for its flush: 256,
    /// as LiveFlowSink.MaxPending announces new flows, so a browser's list loses its oldest rows in step with the new
    /// ones it gets.</summary>
    public const int MaxUnannouncedEvictions = 256;

    private readonly Lock _lock = new();
    private readonly LinkedList<Flow> _flows = new();
    private readonly Dictionary<Guid, LinkedListNode<Flow>> _byId = [];
    private readonly MemoryFlowStoreOptions _options;
    private readonly ILogger _logger;
    private readonly Action<IReadOnlyList<Flow>>? _evicted;
    private List<Flow> _unannounced = [];
    private long _bodyBytes;
    private long _evictedFlows;
    private bool _atCap;
    private bool _disposed;

    /// <summary>Creates an empty store.</summary>
    /// <param name="options">The caps; the defaults when null.</param>
    /// <param name="logger">Where the first eviction of a burst is logged.</param>
    /// <param name="evicted">Called with the flows an append evicted (oldest first), after the store's lock is released,
    /// on the appending thread: the web UI removes their rows from the browsers' lists.</param>
    /// <exception cref="ArgumentOutOfRangeException">A cap is below its minimum (1 flow, 0 bytes).</exception>
    public MemoryFlowStore(MemoryFlowStoreOptions? options = null, ILogger? logger = null, Action<IReadOnlyList<Flow>>? evicted = null)
    {
        _options = options ?? new MemoryFlowStoreOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxFlows, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.MaxBodyBytes, nameof(options));
        _logger = logger ?? NullLogger.Instance;
        _evicted = evicted;
    }

    /// <summary>How many flows the store holds.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _flows.Count;
            }
        }
    }

    /// <summary>The recorded body and WebSocket message bytes the store holds.</summary>
    public long BodyBytes
    {
        get
        {
            lock (_lock)
            {
                return _bodyBytes;
            }
        }
    }

    /// <summary>How many flows were evicted to stay within the caps since the store was created.</summary>
    public long EvictedFlows => Interlocked.Read(ref _evictedFlows);

    /// <inheritdoc/>
    public ValueTask AppendAsync(IReadOnlyList<Flow> flows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flows);
        cancellationToken.ThrowIfCancellationRequested();
        Add(flows);
        AnnounceEvicted();
        return default;
    }

    /// <summary>Keeps one flow (the recorder's path); the flows it evicts are announced at the next flush, or once
    /// <see cref="MaxUnannouncedEvictions"/> of them wait.</summary>
    /// <param name="flow">The flow.</param>
    /// <param name="cancellationToken">Abandons the call before the flow is kept.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    public ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(flow);
        cancellationToken.ThrowIfCancellationRequested();
        if (Add([flow]) >= MaxUnannouncedEvictions)
        {
            AnnounceEvicted();
        }

        return default;
    }

    /// <summary>Announces the evictions of written flows; the flows themselves are readable at once.</summary>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>A completed task.</returns>
    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        AnnounceEvicted();
        return default;
    }

    /// <inheritdoc/>
    public ValueTask<Flow?> GetAsync(Guid id, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return new(_byId.TryGetValue(id, out var node) ? node.Value : null);
        }
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<Flow> QueryAsync(FlowQuery? query = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        query ??= new FlowQuery();
        ArgumentOutOfRangeException.ThrowIfNegative(query.Offset, nameof(query));
        await Task.CompletedTask;
        var skip = query.Offset;
        var left = query.Limit ?? int.MaxValue;
        foreach (var flow in Snapshot(query.Filter is null ? query.Offset : 0, query.Filter is null ? query.Limit : null))
        {
            if (left == 0)
            {
                yield break;
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (query.Filter is { } filter)
            {
                if (!filter.Matches(flow.AsFilterable()))
                {
                    continue;
                }

                if (skip > 0)
                {
                    skip--;
                    continue;
                }
            }

            left--;
            yield return flow;
        }
    }

    /// <inheritdoc/>
    public ValueTask<long> CountAsync(FlowFilter? filter = null, CancellationToken cancellationToken = default)
    {
        if (filter is null)
        {
            return new(Count);
        }

        long count = 0;
        foreach (var flow in Snapshot(0, null))
        {
            cancellationToken.ThrowIfCancellationRequested();
            count += filter.Matches(flow.AsFilterable()) ? 1 : 0;
        }

        return new(count);
    }

    /// <inheritdoc/>
    public ValueTask<long> DeleteAsync(FlowFilter? filter = null, CancellationToken cancellationToken = default)
    {
        if (filter is not null)
        {
            List<Guid> doomed = [];
            foreach (var flow in Snapshot(0, null))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (filter.Matches(flow.AsFilterable()))
                {
                    doomed.Add(flow.Id);
                }
            }

            return DeleteByIdAsync(doomed, cancellationToken);
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long count = _flows.Count;
            _flows.Clear();
            _byId.Clear();
            _bodyBytes = 0;
            _atCap = false;
            return new(count);
        }
    }

    /// <inheritdoc/>
    public ValueTask<long> DeleteByIdAsync(IReadOnlyCollection<Guid> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long count = 0;
            foreach (var id in ids)
            {
                count += Remove(id) ? 1 : 0;
            }

            _atCap &= count == 0;
            return new(count);
        }
    }

    /// <summary>Drops every flow; later calls throw <see cref="ObjectDisposedException"/>.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            _disposed = true;
            _unannounced.Clear();
            _flows.Clear();
            _byId.Clear();
            _bodyBytes = 0;
        }

        return default;
    }

    /// <summary>The recorded bytes a flow holds: its bodies' and WebSocket messages' content (what the recorder kept,
    /// not the wire lengths).</summary>
    /// <param name="flow">The flow.</param>
    /// <returns>The byte count.</returns>
    internal static long BodyBytesOf(Flow flow)
    {
        if (flow is not HttpFlow http)
        {
            return 0;
        }

        long bytes = http.Request.Body.Content.Length + (http.Response?.Body.Content.Length ?? 0);
        foreach (var message in http.WebSocket?.Messages ?? [])
        {
            bytes += message.Content.Length;
        }

        return bytes;
    }

    /// <summary>A copy of the references of up to <paramref name="limit"/> flows from position <paramref name="offset"/>,
    /// taken under the lock; the caller filters and serializes them outside it.</summary>
    private Flow[] Snapshot(int offset, int? limit)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var count = Math.Max(0, Math.Min(_flows.Count - offset, limit ?? int.MaxValue));
            var copy = new Flow[count];
            var node = _flows.First;
            for (var i = 0; i < offset && node is not null; i++)
            {
                node = node.Next;
            }

            for (var i = 0; i < count; i++, node = node.Next)
            {
                copy[i] = node!.Value;
            }

            return copy;
        }
    }

    /// <summary>Adds <paramref name="flows"/>, evicts the oldest past the caps (kept for <see cref="AnnounceEvicted"/>),
    /// logs the first eviction of a burst; returns how many evicted flows wait to be announced.</summary>
    private int Add(IReadOnlyList<Flow> flows)
    {
        int evicted, unannounced;
        bool firstOfBurst;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var flow in flows)
            {
                ArgumentNullException.ThrowIfNull(flow, nameof(flows));
                Add(flow);
            }

            evicted = 0;
            while (_flows.Count > _options.MaxFlows || (_bodyBytes > _options.MaxBodyBytes && _flows.Count > 1))
            {
                var oldest = _flows.First!.Value;
                Remove(oldest.Id);
                _unannounced.Add(oldest);
                evicted++;
            }

            firstOfBurst = evicted > 0 && !_atCap;
            _atCap |= evicted > 0;
            unannounced = _unannounced.Count;
        }

        if (evicted > 0)
        {
            var total = Interlocked.Add(ref _evictedFlows, evicted);
            if (firstOfBurst)
            {
                StoreLog.MemoryEvicting(_logger, _options.MaxFlows, _options.MaxBodyBytes, total);
            }
        }

        return unannounced;
    }

    /// <summary>Hands the evicted flows not announced yet to the callback, outside the lock.</summary>
    private void AnnounceEvicted()
    {
        List<Flow> evicted;
        lock (_lock)
        {
            if (_unannounced.Count == 0)
            {
                return;
            }

            evicted = _unannounced;
            _unannounced = [];
        }

        _evicted?.Invoke(evicted);
    }

    /// <summary>Adds <paramref name="flow"/> at the end, or replaces the stored flow with its id in place; the caller
    /// holds the lock.</summary>
    private void Add(Flow flow)
    {
        if (_byId.TryGetValue(flow.Id, out var node))
        {
            _bodyBytes -= BodyBytesOf(node.Value);
            node.Value = flow;
        }
        else
        {
            _byId.Add(flow.Id, _flows.AddLast(flow));
        }

        _bodyBytes += BodyBytesOf(flow);
    }

    /// <summary>Removes the flow with <paramref name="id"/>; the caller holds the lock.</summary>
    private bool Remove(Guid id)
    {
        if (!_byId.Remove(id, out var node))
        {
            return false;
        }

        _flows.Remove(node);
        _bodyBytes -= BodyBytesOf(node.Value);
        return true;
    }
}
