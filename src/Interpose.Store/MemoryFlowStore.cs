using System.Buffers;
using System.Runtime.CompilerServices;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Store;

/// <summary>
/// Flows kept in this process, bounded, gone when it ends: what <c>interpose run --web</c> shows without <c>-w</c>
/// (mitmweb keeps its flows in memory the same way). Each flow is kept as one record of bytes in a large shared
/// block: the flow in a compact binary form (<see cref="FlowRecord"/>: no property names, without body bytes and
/// certificates), its body bytes, and its URL and host;
/// beside it, a small entry with the fields the list's filters read most (status, error, kind, method, marker, comment,
/// replay) and the certificate chains (shared with the proxy's, not copied). A flow is decoded when it is asked for.
/// </summary>
/// <remarks>
/// <code>
///  IFlowSink.WriteAsync / AppendAsync ─► FlowRecord (thread's buffer, outside the lock)
///      ─► lock { record copied into the current block; list (append order) + index by id; evict the oldest past a cap }
///  QueryAsync / CountAsync / DeleteAsync(filter) ─► lock { copy the entries' references } ─► filter outside the lock:
///      on the entries when it reads nothing else, else on the decoded flow ─► decode what is returned
/// </code>
/// Why not the flow objects themselves: a recorded flow is a graph of some forty objects (records, header arrays,
/// strings, body arrays); 100,000 of them kept alive are millions of objects that the collector copies from generation
/// to generation as they survive, then marks at every full collection. A record is written once into a 1 MiB block
/// (<see cref="BlockBytes"/>, on the large object heap: never copied, a block of bytes is marked without looking inside)
/// and the recorder's objects die young; what survives per flow is its entry and list node (docs/performance.md, "Web UI").
/// A block whose flows are all gone (evicted, deleted or replaced) is reused for new records once the queries that ran when
/// it emptied have ended (<see cref="MaxFreeBlocks"/> kept; eviction is oldest first, so at the cap blocks empty in order and the store stops
/// allocating); a flow deleted or replaced from the middle leaves its bytes in its block until the block's other flows
/// go.
/// Past <see cref="MemoryFlowStoreOptions.MaxFlows"/> or <see cref="MemoryFlowStoreOptions.MaxBodyBytes"/> the oldest
/// flows are evicted: counted in <see cref="EvictedFlows"/>, reported to the observer, and logged once
/// when the store first reaches a cap (again only after a delete or clear made room), not once per flow.
/// A flow appended again (a mark, a comment) replaces the stored one in place, keeping its position.
/// Queries return bodies only with <see cref="FlowQuery.IncludeBodies"/> (or when the filter reads them), as the SQLite
/// store does: they are copied out of the block.
/// NOTE: a lock around a linked list and a dictionary rather than a concurrent collection: the writer is one recorder
/// task, readers are the UI's requests, and every operation under the lock is O(1) (a record's copy into its block
/// included) except the reference copy of a query (about a millisecond for 100,000 flows).
/// </remarks>
public sealed class MemoryFlowStore : IFlowStore, IFlowSink
{
    /// <summary>New or evicted flows a recorder's writes collect before they are told to the observer without waiting
    /// for its flush: 256, so that a busy recorder calls it a few hundred times a second at most (every call filters
    /// the flows for every browser), and a browser's list loses its oldest rows in step with the new ones it gets.</summary>
    public const int MaxUnannounced = 256;

    /// <summary>The size of a shared block of records: 1 MiB, several hundred typical flows (a 1 KiB body and 1.5 KiB of
    /// compact head each), past the large object heap's 85,000-byte threshold so a block is never copied by the collector.</summary>
    public const int BlockBytes = 1024 * 1024;

    /// <summary>Emptied blocks kept for reuse at most: 4 MiB. At the cap a block empties about as often as one fills, so a
    /// few cover a burst of evictions; more would only hold memory the collector could have.</summary>
    internal const int MaxFreeBlocks = 4;

    /// <summary>Emptied blocks that wait for the queries that ran when they emptied at most: 16 MiB; past it they are left
    /// to the collector (a query that is never disposed must not keep memory from being freed).</summary>
    private const int MaxRetiredBlocks = 16;

    /// <summary>A record larger than this gets an array of its own: at most this much of a block is left unused when a
    /// record does not fit in its rest (1/16).</summary>
    private const int MaxSharedRecordBytes = BlockBytes / 16;

    /// <summary>The buffer a thread encodes flows in is dropped past this: a flow with a large WebSocket history may need
    /// megabytes once, and the buffer should not keep them.</summary>
    private const int MaxKeptBuffer = 64 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    private readonly Lock _lock = new();
    private readonly LinkedList<StoredFlow> _flows = new();
    private readonly Dictionary<Guid, LinkedListNode<StoredFlow>> _byId = [];
    private readonly MemoryFlowStoreOptions _options;
    private readonly ILogger _logger;
    private readonly IFlowStoreObserver? _observer;

    // What the observer has not been told yet (in the order of the sequences): the flows kept, the flows evicted and
    // the sequence of the append that evicted each. Announce swaps them out under _lock and calls the observer under
    // _announceLock, so that two writers' calls reach it in order.
    private List<SequencedFlow> _unannouncedStored = [];
    private List<StoredFlow> _unannounced = [];
    private List<long> _unannouncedEvictedBy = [];
    private readonly Lock _announceLock = new();

    /// <summary>The sequence of the last append (<see cref="IFlowStoreObserver"/>): each takes the next one, a new flow
    /// keeps it as its own.</summary>
    private long _sequence;
    private Block? _block;
    private int _blockUsed;

    // Blocks whose flows are all gone, kept for the next records instead of left to the collector (a block of the large
    // object heap is freed only by a full collection: at the flow cap, evicted blocks piled up between two of them).
    // A query decodes the flows it copied outside the lock, so a block is reused only once every reader that ran when it
    // emptied is done: each reader holds a ticket (_readers, in the order they began), and a block emptied while some
    // run waits in _retiredBlocks with the next ticket to be given; it is reusable once the oldest running reader's
    // ticket is at least that (readers that began after it emptied cannot reach it).
    private readonly Stack<Block> _freeBlocks = new();
    private readonly List<(Block Block, long Ticket)> _retiredBlocks = [];
    private readonly List<long> _readers = [];
    private long _nextTicket;
    private long _blocksAllocated;
    private long _bodyBytes;
    private long _recordBytes;
    private long _evictedFlows;
    private bool _atCap;
    private bool _disposed;

    /// <summary>Creates an empty store.</summary>
    /// <param name="options">The caps; the defaults when null.</param>
    /// <param name="logger">Where the first eviction of a burst is logged.</param>
    /// <param name="observer">Told the flows appended and the flows evicted (the web UI's live list), after the store's
    /// lock is released, on the appending thread: at once for <see cref="AppendAsync"/>, at the flush or once
    /// <see cref="MaxUnannounced"/> wait for <see cref="WriteAsync"/>. The evicted list decodes a flow only when it is
    /// read (an observer that only counts them decodes none), and only during the call: the evicted records' block may
    /// be reused once it returns, so a flow first read after it throws <see cref="InvalidOperationException"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A cap is below its minimum (1 flow, 0 bytes).</exception>
    public MemoryFlowStore(MemoryFlowStoreOptions? options = null, ILogger? logger = null, IFlowStoreObserver? observer = null)
    {
        _options = options ?? new MemoryFlowStoreOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxFlows, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.MaxBodyBytes, nameof(options));
        _logger = logger ?? NullLogger.Instance;
        _observer = observer;
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

    /// <summary>The bytes of the flows' records (their compact form, body bytes, URL and host): most of what the flows cost in
    /// memory, besides a small entry per flow and the unused ends of blocks.</summary>
    public long RecordBytes
    {
        get
        {
            lock (_lock)
            {
                return _recordBytes;
            }
        }
    }

    /// <summary>How many flows were evicted to stay within the caps since the store was created.</summary>
    public long EvictedFlows => Interlocked.Read(ref _evictedFlows);

    /// <summary>How many shared blocks the store has allocated; at its cap it reuses emptied ones instead.</summary>
    internal long BlocksAllocated
    {
        get
        {
            lock (_lock)
            {
                return _blocksAllocated;
            }
        }
    }

    /// <inheritdoc/>
    public ValueTask AppendAsync(IReadOnlyList<Flow> flows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flows);
        cancellationToken.ThrowIfCancellationRequested();
        foreach (var flow in flows)
        {
            ArgumentNullException.ThrowIfNull(flow, nameof(flows));
        }

        foreach (var flow in flows)
        {
            Add(flow);
        }

        Announce();
        return default;
    }

    /// <summary>Keeps one flow (the recorder's path), readable at once; it and the flows it evicts are told to the
    /// observer at the next flush, or once <see cref="MaxUnannounced"/> of either wait.</summary>
    /// <param name="flow">The flow.</param>
    /// <param name="cancellationToken">Abandons the call before the flow is kept.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    public ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(flow);
        cancellationToken.ThrowIfCancellationRequested();
        if (Add(flow) >= MaxUnannounced)
        {
            Announce();
        }

        return default;
    }

    /// <summary>Tells the observer the written flows and their evictions; the flows themselves are readable at once.</summary>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>A completed task.</returns>
    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        Announce();
        return default;
    }

    /// <inheritdoc/>
    public ValueTask<Flow?> GetAsync(Guid id, CancellationToken cancellationToken = default)
    {
        StoredFlow? stored;
        long ticket;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            stored = _byId.TryGetValue(id, out var node) ? node.Value : null;
            if (stored is null)
            {
                return new((Flow?)null);
            }

            ticket = EnterReader();
        }

        try
        {
            return new(stored.Decode(bodies: true));
        }
        finally
        {
            ExitReader(ticket);
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
        var matcher = new Matcher(query.Filter);
        var (snapshot, ticket) = Snapshot(query.Filter is null ? query.Offset : 0, query.Filter is null ? query.Limit : null);
        try
        {
            foreach (var stored in snapshot)
            {
                if (left == 0)
                {
                    yield break;
                }

                cancellationToken.ThrowIfCancellationRequested();
                Flow? flow = null;
                if (query.Filter is not null)
                {
                    if (!matcher.Matches(stored, out flow))
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
                yield return flow ?? stored.Decode(query.IncludeBodies);
            }
        }
        finally
        {
            ExitReader(ticket);
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
        var matcher = new Matcher(filter);
        var (snapshot, ticket) = Snapshot(0, null);
        try
        {
            foreach (var stored in snapshot)
            {
                cancellationToken.ThrowIfCancellationRequested();
                count += matcher.Matches(stored, out _) ? 1 : 0;
            }
        }
        finally
        {
            ExitReader(ticket);
        }

        return new(count);
    }

    /// <inheritdoc/>
    public ValueTask<FlowTail> TailAsync(FlowFilter? filter, int count, bool includeBodies = false, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        StoredFlow[] snapshot;
        long ticket, sequence;
        int stored;
        lock (_lock)
        {
            // The references and the sequence at one moment: the observer is told later flows with higher sequences.
            ObjectDisposedException.ThrowIf(_disposed, this);
            ticket = EnterReader();
            sequence = _sequence;
            stored = _flows.Count;
            snapshot = new StoredFlow[filter is null ? Math.Min(count, stored) : stored];
            var node = _flows.Last;
            for (var i = snapshot.Length - 1; i >= 0; i--, node = node.Previous)
            {
                snapshot[i] = node!.Value;
            }
        }

        try
        {
            if (filter is null)
            {
                var all = new Flow[snapshot.Length];
                for (var i = 0; i < snapshot.Length; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    all[i] = snapshot[i].Decode(includeBodies);
                }

                return new(new FlowTail(stored - all.Length, all, stored, sequence));
            }

            // The last `count` that match, in a ring: the filter is evaluated on every flow (to count them), a flow is
            // decoded only when the filter needs it or it is among the last.
            var matcher = new Matcher(filter);
            var ring = new (StoredFlow Stored, Flow? Decoded)[count];
            long total = 0;
            foreach (var candidate in snapshot)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (matcher.Matches(candidate, out var decoded))
                {
                    if (count > 0)
                    {
                        ring[total % count] = (candidate, decoded);
                    }

                    total++;
                }
            }

            var kept = (int)Math.Min(count, total);
            var flows = new Flow[kept];
            for (var i = 0; i < kept; i++)
            {
                var (candidate, decoded) = ring[(total - kept + i) % count];
                flows[i] = decoded ?? candidate.Decode(includeBodies);
            }

            return new(new FlowTail(total - kept, flows, total, sequence));
        }
        finally
        {
            ExitReader(ticket);
        }
    }

    /// <inheritdoc/>
    public ValueTask<long> DeleteAsync(FlowFilter? filter = null, CancellationToken cancellationToken = default)
    {
        if (filter is not null)
        {
            List<Guid> doomed = [];
            var matcher = new Matcher(filter);
            var (snapshot, ticket) = Snapshot(0, null);
            try
            {
                foreach (var stored in snapshot)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (matcher.Matches(stored, out _))
                    {
                        doomed.Add(stored.Id);
                    }
                }
            }
            finally
            {
                ExitReader(ticket);
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
            _recordBytes = 0;
            DropBlocks();
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
                if (Remove(id) is { } removed)
                {
                    Release(removed);
                    count++;
                }
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
            _unannouncedEvictedBy.Clear();
            _unannouncedStored.Clear();
            _flows.Clear();
            _byId.Clear();
            _bodyBytes = 0;
            _recordBytes = 0;
            DropBlocks();
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

    /// <summary>Whether <paramref name="node"/> reads only what a <see cref="StoredFlow"/> keeps in its entry, so it
    /// is evaluated without decoding the flow.</summary>
    private static bool ReadsKeptFieldsOnly(FilterNode node) => node switch
    {
        // Not ~d: it also reads the Host header (mitmproxy's pretty_host), which the entry does not keep.
        FilterPattern p => p.Operator is FilterOperator.Method or FilterOperator.Url
            or FilterOperator.Marker or FilterOperator.Comment,
        FilterStatusCode => true,
        FilterFlag f => f.Operator is FilterOperator.All or FilterOperator.Error or FilterOperator.Http or FilterOperator.Tcp
            or FilterOperator.Udp or FilterOperator.Dns or FilterOperator.Request or FilterOperator.Response
            or FilterOperator.Marked or FilterOperator.Replay or FilterOperator.ReplayRequest or FilterOperator.ReplayResponse,
        FilterNot not => ReadsKeptFieldsOnly(not.Operand),
        FilterJunction junction => junction.Operands.All(ReadsKeptFieldsOnly),
        _ => false,
    };

    /// <summary>A copy of the references of up to <paramref name="limit"/> flows from position <paramref name="offset"/>,
    /// taken under the lock; the caller filters and decodes them outside it, and calls <see cref="ExitReader"/> with the
    /// ticket when it is done reading them (no block they are in is reused until then).</summary>
    private (StoredFlow[] Flows, long Ticket) Snapshot(int offset, int? limit)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var ticket = EnterReader();
            var count = Math.Max(0, Math.Min(_flows.Count - offset, limit ?? int.MaxValue));
            var copy = new StoredFlow[count];
            var node = _flows.First;
            for (var i = 0; i < offset && node is not null; i++)
            {
                node = node.Next;
            }

            for (var i = 0; i < count; i++, node = node.Next)
            {
                copy[i] = node!.Value;
            }

            return (copy, ticket);
        }
    }

    /// <summary>Adds <paramref name="flow"/> (encoded on this thread, then copied into a block under the lock), evicts
    /// the oldest past the caps, keeps both for <see cref="Announce"/>, logs the first eviction of a burst; returns how
    /// many new or evicted flows (the larger) wait to be announced.</summary>
    private int Add(Flow flow)
    {
        var encoded = StoredFlow.Encode(flow);
        int evicted, unannounced;
        bool firstOfBurst;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var (block, offset) = Reserve(encoded.Length);
            var stored = encoded.Complete(block, offset);
            var sequence = ++_sequence;
            var replaced = Keep(stored, sequence);
            if (_observer is not null)
            {
                _unannouncedStored.Add(new SequencedFlow(flow, stored.Sequence, replaced));
            }

            evicted = 0;
            while (_flows.Count > _options.MaxFlows || (_bodyBytes > _options.MaxBodyBytes && _flows.Count > 1))
            {
                // Its block stays in use until the eviction is announced: the observer may decode it.
                _unannounced.Add(Remove(_flows.First!.Value.Id)!);
                _unannouncedEvictedBy.Add(sequence);
                evicted++;
            }

            firstOfBurst = evicted > 0 && !_atCap;
            _atCap |= evicted > 0;
            unannounced = Math.Max(_unannounced.Count, _unannouncedStored.Count);
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

    /// <summary>Room for a record of <paramref name="length"/> bytes: the rest of the current block, a new block, or an
    /// array of its own for a large record; the caller holds the lock.</summary>
    private (Block Block, int Offset) Reserve(int length)
    {
        if (length > MaxSharedRecordBytes)
        {
            return (new Block(new byte[length], shared: false), 0);
        }

        if (_block is null || BlockBytes - _blockUsed < length)
        {
            var full = _block;
            if (!_freeBlocks.TryPop(out _block))
            {
                _block = new Block(new byte[BlockBytes], shared: true);
                _blocksAllocated++;
            }

            _blockUsed = 0;
            if (full is { Live: 0 })
            {
                Retire(full);
            }
        }

        var offset = _blockUsed;
        _blockUsed += length;
        return (_block, offset);
    }

    /// <summary>One record fewer in <paramref name="flow"/>'s block; an emptied shared block is retired for reuse. The
    /// caller holds the lock.</summary>
    private void Release(StoredFlow flow)
    {
        var block = flow.Block;
        if (--block.Live == 0 && block.Shared && !ReferenceEquals(block, _block))
        {
            Retire(block);
        }
    }

    /// <summary>An emptied block: reusable now when nobody reads, else once the readers running now have ended. The
    /// caller holds the lock.</summary>
    private void Retire(Block block)
    {
        if (_readers.Count == 0)
        {
            if (_freeBlocks.Count < MaxFreeBlocks)
            {
                _freeBlocks.Push(block);
            }
        }
        else if (_retiredBlocks.Count < MaxRetiredBlocks)
        {
            _retiredBlocks.Add((block, _nextTicket));
        }
    }

    /// <summary>A reader begins: its ticket. The caller holds the lock.</summary>
    private long EnterReader()
    {
        var ticket = _nextTicket++;
        _readers.Add(ticket);
        return ticket;
    }

    /// <summary>The reader with <paramref name="ticket"/> (from <see cref="Snapshot"/> or <see cref="GetAsync"/>) is done
    /// with the blocks: the blocks that emptied while only readers as old as it or older ran become reusable.</summary>
    private void ExitReader(long ticket)
    {
        lock (_lock)
        {
            _readers.Remove(ticket);
            var oldest = long.MaxValue;
            foreach (var running in _readers)
            {
                oldest = Math.Min(oldest, running);
            }

            for (var i = _retiredBlocks.Count - 1; i >= 0; i--)
            {
                if (_retiredBlocks[i].Ticket <= oldest)
                {
                    if (_freeBlocks.Count < MaxFreeBlocks)
                    {
                        _freeBlocks.Push(_retiredBlocks[i].Block);
                    }

                    _retiredBlocks.RemoveAt(i);
                }
            }
        }
    }

    /// <summary>Forgets every block (a clear, a dispose): flows a reader still holds keep theirs alive, and none is reused.
    /// The caller holds the lock.</summary>
    private void DropBlocks()
    {
        _block = null;
        _freeBlocks.Clear();
        _retiredBlocks.Clear();
    }

    /// <summary>Tells the observer the flows kept and evicted since the last call, outside the store's lock (under
    /// <see cref="_announceLock"/>, so that calls keep the order of the sequences); without an observer, only releases
    /// the evicted flows' records.</summary>
    private void Announce()
    {
        lock (_announceLock)
        {
            List<SequencedFlow> stored;
            List<StoredFlow> evicted;
            List<long> evictedBy;
            lock (_lock)
            {
                if (_unannounced.Count == 0 && _unannouncedStored.Count == 0)
                {
                    return;
                }

                (stored, _unannouncedStored) = (_unannouncedStored, []);
                (evicted, _unannounced) = (_unannounced, []);
                (evictedBy, _unannouncedEvictedBy) = (_unannouncedEvictedBy, []);
                if (_observer is null)
                {
                    ReleaseAll(evicted);
                    return;
                }
            }

            if (stored.Count > 0)
            {
                _observer.Stored(stored);
            }

            if (evicted.Count == 0)
            {
                return;
            }

            // The observer reads the evicted flows' records: their blocks are released once it returns, and the list it
            // got refuses to decode after that.
            var decoded = new DecodedOnRead(evicted);
            try
            {
                _observer.Evicted(decoded, evictedBy);
            }
            finally
            {
                decoded.Expire();
                lock (_lock)
                {
                    ReleaseAll(evicted);
                }
            }
        }

        void ReleaseAll(List<StoredFlow> flows)
        {
            foreach (var flow in flows)
            {
                Release(flow);
            }
        }
    }

    /// <summary>Adds <paramref name="flow"/> at the end with <paramref name="sequence"/>, or replaces the stored flow
    /// with its id in place (keeping its sequence); true when it replaced one. The caller holds the lock.</summary>
    private bool Keep(StoredFlow flow, long sequence)
    {
        flow.Block.Live++;
        var replaced = _byId.TryGetValue(flow.Id, out var node);
        if (replaced)
        {
            _bodyBytes -= node!.Value.BodyBytes;
            _recordBytes -= node.Value.RecordLength;
            Release(node.Value);
            flow.Sequence = node.Value.Sequence;
            node.Value = flow;
        }
        else
        {
            flow.Sequence = sequence;
            _byId.Add(flow.Id, _flows.AddLast(flow));
        }

        _bodyBytes += flow.BodyBytes;
        _recordBytes += flow.RecordLength;
        return replaced;
    }

    /// <summary>Removes the flow with <paramref name="id"/> from the list (its block still counts it: the caller releases
    /// it, at once or once its eviction is announced); null when there is none. The caller holds the lock.</summary>
    private StoredFlow? Remove(Guid id)
    {
        if (!_byId.Remove(id, out var node))
        {
            return null;
        }

        _flows.Remove(node);
        _bodyBytes -= node.Value.BodyBytes;
        _recordBytes -= node.Value.RecordLength;
        return node.Value;
    }

    /// <summary>A filter evaluated on stored flows: on the kept fields when it reads nothing else, on the decoded flow
    /// otherwise (which the caller then returns rather than decoding it again).</summary>
    private readonly struct Matcher(FlowFilter? filter)
    {
        private readonly bool _onKeptFields = filter is not null && ReadsKeptFieldsOnly(filter.Root);

        public bool Matches(StoredFlow stored, out Flow? decoded)
        {
            if (filter is null)
            {
                decoded = null;
                return true;
            }

            if (_onKeptFields)
            {
                decoded = null;
                return filter.Matches(stored);
            }

            decoded = stored.Decode(bodies: true);
            return filter.Matches(decoded.AsFilterable());
        }
    }

    /// <summary>Evicted flows as the callback gets them: each decoded when it is first read, and a filter on the kept
    /// fields answered without decoding. A detached copy (<see cref="Detach"/>) is read by several browsers' push loops
    /// at once: a flow two of them decode at the same time is decoded twice, both copies equal, and the filter cache is
    /// one reference, so each reader sees a filter with its own answer.</summary>
    private sealed class DecodedOnRead(List<StoredFlow> stored, Flow?[]? decoded = null) : IFilterableFlowList
    {
        private readonly Flow?[] _decoded = decoded ?? new Flow?[stored.Count];
        private volatile bool _expired;

        /// <summary>The last filter asked about and whether it reads only the kept fields: a reader asks the same filter
        /// of every flow.</summary>
        private volatile KeptFieldsAnswer? _last;

        public int Count => stored.Count;

        /// <exception cref="InvalidOperationException">A flow not decoded during the callback is read after it: its
        /// record's block may hold other records by then.</exception>
        public Flow this[int index] => _decoded[index] ??= _expired
            ? throw new InvalidOperationException("An evicted flow is read after the observer's Evicted call returned; read the flows during the call.")
            : stored[index].Decode(bodies: true);

        /// <summary>The callback returned: flows not decoded by now never will be.</summary>
        public void Expire() => _expired = true;

        /// <inheritdoc/>
        public bool Matches(int index, FlowFilter filter)
        {
            ArgumentNullException.ThrowIfNull(filter);
            if (_decoded[index] is { } decoded)
            {
                return filter.Matches(decoded.AsFilterable());
            }

            var last = _last;
            if (last is null || !ReferenceEquals(filter, last.Filter))
            {
                _last = last = new KeptFieldsAnswer(filter, ReadsKeptFieldsOnly(filter.Root));
            }

            return last.OnKeptFields && !_expired ? filter.Matches(stored[index]) : filter.Matches(this[index].AsFilterable());
        }

        /// <inheritdoc/>
        public IFilterableFlowList Detach()
        {
            ObjectDisposedException.ThrowIf(_expired, this);
            var copies = new List<StoredFlow>(stored.Count);
            foreach (var flow in stored)
            {
                copies.Add(flow.Detach());
            }

            return new DecodedOnRead(copies, [.. _decoded]);
        }

        public IEnumerator<Flow> GetEnumerator()
        {
            for (var i = 0; i < stored.Count; i++)
            {
                yield return this[i];
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        private sealed record KeptFieldsAnswer(FlowFilter Filter, bool OnKeptFields);
    }

    /// <summary>A block of records (or a large record's own array) and how many kept flows, and evicted flows not yet
    /// announced, have their record in it; guarded by the store's lock.</summary>
    private sealed class Block(byte[] bytes, bool shared)
    {
        public byte[] Bytes { get; } = bytes;

        /// <summary>A shared block (reused once empty), not a large record's own array.</summary>
        public bool Shared { get; } = shared;

        public int Live { get; set; }
    }

    /// <summary>
    /// One flow as the store keeps it: a record in a block (the flow's compact form, request body, response body, URL, host), the fields
    /// filters read most, the certificate chains by reference. As an <see cref="IFilterableFlow"/> it answers only those
    /// fields (<see cref="ReadsKeptFieldsOnly"/>); the URL and host are decoded from the record when read.
    /// </summary>
    private sealed class StoredFlow : IFilterableFlow
    {
        private readonly int _offset;
        private readonly int _headLength;
        private readonly int _requestBodyLength;
        private readonly int _responseBodyLength;

        /// <summary>The URL's and host's UTF-8 lengths; -1 for null.</summary>
        private readonly int _urlLength;
        private readonly int _hostLength;
        private readonly IReadOnlyList<byte[]>? _serverChain;
        private readonly IReadOnlyList<byte[]>? _clientChain;

        private StoredFlow(in Encoded encoded, Block block, int offset)
        {
            var flow = encoded.Flow;
            var view = encoded.View;
            Id = flow.Id;
            Block = block;
            _offset = offset;
            _headLength = encoded.HeadLength;
            _requestBodyLength = encoded.RequestBody.Length;
            _responseBodyLength = encoded.ResponseBody.Length;
            _urlLength = encoded.UrlLength;
            _hostLength = encoded.HostLength;
            RecordLength = encoded.Length;
            BodyBytes = BodyBytesOf(flow);
            Kind = view.Kind;
            Method = KnownMethod(view.Method);
            HasResponse = view.HasResponse;
            StatusCode = view.StatusCode;
            HasError = view.HasError;
            Marker = view.Marker;
            Comment = view.Comment;
            Replay = view.Replay;
            if (flow is HttpFlow http)
            {
                _serverChain = http.ServerTls?.CertificateChain is { Count: > 0 } server ? server : null;
                _clientChain = http.ClientTls?.CertificateChain is { Count: > 0 } client ? client : null;
            }
        }

        /// <summary>A copy of <paramref name="source"/> whose record is a copy of its own, in an array of its own.</summary>
        private StoredFlow(StoredFlow source)
        {
            Id = source.Id;
            Sequence = source.Sequence;
            Block = new Block(source.Block.Bytes.AsSpan(source._offset, source.RecordLength).ToArray(), shared: false);
            _offset = 0;
            _headLength = source._headLength;
            _requestBodyLength = source._requestBodyLength;
            _responseBodyLength = source._responseBodyLength;
            _urlLength = source._urlLength;
            _hostLength = source._hostLength;
            _serverChain = source._serverChain;
            _clientChain = source._clientChain;
            RecordLength = source.RecordLength;
            BodyBytes = source.BodyBytes;
            Kind = source.Kind;
            Method = source.Method;
            HasResponse = source.HasResponse;
            StatusCode = source.StatusCode;
            HasError = source.HasError;
            Marker = source.Marker;
            Comment = source.Comment;
            Replay = source.Replay;
        }

        public Guid Id { get; }

        /// <summary>Its number in the store's order (<see cref="IFlowStoreObserver"/>).</summary>
        public long Sequence { get; set; }

        /// <summary>Where the record is.</summary>
        public Block Block { get; }

        public long BodyBytes { get; }

        public int RecordLength { get; }

        public FilterFlowKind Kind { get; }

        public string? Method { get; }

        public string? Url => Text(_headLength + _requestBodyLength + _responseBodyLength, _urlLength);

        public string? Host => Text(_headLength + _requestBodyLength + _responseBodyLength + Math.Max(0, _urlLength), _hostLength);

        public HttpHeaders? RequestHeaders => null;

        public HttpHeaders? ResponseHeaders => null;

        public ReadOnlyMemory<byte> RequestBody => ReadOnlyMemory<byte>.Empty;

        public ReadOnlyMemory<byte> ResponseBody => ReadOnlyMemory<byte>.Empty;

        public bool HasResponse { get; }

        public int? StatusCode { get; }

        public IReadOnlyList<FilterMessage> Messages => [];

        public bool IsWebSocket => false;

        public bool HasError { get; }

        public string? ClientAddress => null;

        public string? ServerAddress => null;

        public string? Marker { get; }

        public string? Comment { get; }

        public FilterReplayKind Replay { get; }

        /// <summary>This flow with a copy of its record that is no block's (the store never reuses or releases it): readable
        /// after its own block was released. The record is copied as bytes, not decoded.</summary>
        public StoredFlow Detach() => new(this);

        /// <summary>Writes <paramref name="flow"/>'s compact form and its URL and host on this thread's buffer; the bodies are
        /// copied from the flow when the record is completed.</summary>
        public static Encoded Encode(Flow flow)
        {
            var output = t_buffer ??= new ArrayBufferWriter<byte>();
            if (output.Capacity > MaxKeptBuffer)
            {
                output = t_buffer = new ArrayBufferWriter<byte>();
            }

            output.ResetWrittenCount();
            FlowRecord.Write(output, flow);
            var headLength = output.WrittenCount;
            var view = flow.AsFilterable();
            var urlLength = WriteText(output, view.Url);
            var hostLength = WriteText(output, view.Host);
            var http = flow as HttpFlow;
            return new Encoded(flow, view, output.WrittenMemory, headLength, urlLength, hostLength,
                http?.Request.Body.Content ?? default, http?.Response?.Body.Content ?? default);
        }

        /// <summary>The flow as it was kept: the record decoded, the bodies copied out of the record when asked for, the
        /// certificate chains put back.</summary>
        /// <exception cref="InvalidDataException">The record does not read back (a writer and reader that disagree).</exception>
        public Flow Decode(bool bodies)
        {
            var bytes = Block.Bytes;
            var flow = FlowRecord.Read(bytes.AsSpan(_offset, _headLength));
            if (flow is not HttpFlow http)
            {
                return flow;
            }

            var request = http.Request;
            var response = http.Response;
            if (bodies && _requestBodyLength > 0)
            {
                request = request with { Body = request.Body with { Content = bytes.AsSpan(_offset + _headLength, _requestBodyLength).ToArray() } };
            }

            if (bodies && _responseBodyLength > 0 && response is not null)
            {
                response = response with { Body = response.Body with { Content = bytes.AsSpan(_offset + _headLength + _requestBodyLength, _responseBodyLength).ToArray() } };
            }

            return http with
            {
                Request = request,
                Response = response,
                ServerTls = _serverChain is null || http.ServerTls is null ? http.ServerTls : http.ServerTls with { CertificateChain = _serverChain },
                ClientTls = _clientChain is null || http.ClientTls is null ? http.ClientTls : http.ClientTls with { CertificateChain = _clientChain },
            };
        }

        /// <summary>Writes <paramref name="text"/> as UTF-8; returns its length, or -1 for null.</summary>
        private static int WriteText(ArrayBufferWriter<byte> output, string? text)
        {
            if (text is null)
            {
                return -1;
            }

            var length = System.Text.Encoding.UTF8.GetBytes(text, output.GetSpan(System.Text.Encoding.UTF8.GetMaxByteCount(text.Length)));
            output.Advance(length);
            return length;
        }

        /// <summary>The method as a shared string when it is one of RFC 9110's (§9.3), so an entry holds no string of
        /// its own for it.</summary>
        private static string? KnownMethod(string? method) => method switch
        {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            "DELETE" => "DELETE",
            "HEAD" => "HEAD",
            "OPTIONS" => "OPTIONS",
            "PATCH" => "PATCH",
            "CONNECT" => "CONNECT",
            "TRACE" => "TRACE",
            _ => method,
        };

        private string? Text(int start, int length) =>
            length < 0 ? null : System.Text.Encoding.UTF8.GetString(Block.Bytes, _offset + start, length);

        /// <summary>A flow encoded on a thread's buffer, not yet in a block.</summary>
        public readonly struct Encoded(Flow flow, IFilterableFlow view, ReadOnlyMemory<byte> written, int headLength, int urlLength, int hostLength, ReadOnlyMemory<byte> requestBody, ReadOnlyMemory<byte> responseBody)
        {
            public Flow Flow => flow;

            public IFilterableFlow View => view;

            public int HeadLength => headLength;

            public int UrlLength => urlLength;

            public int HostLength => hostLength;

            public ReadOnlyMemory<byte> RequestBody => requestBody;

            public ReadOnlyMemory<byte> ResponseBody => responseBody;

            /// <summary>The record's length: compact form, bodies, URL, host.</summary>
            public int Length => written.Length + requestBody.Length + responseBody.Length;

            /// <summary>Copies the record to <paramref name="block"/> at <paramref name="offset"/>; the entry that reads it.</summary>
            public StoredFlow Complete(Block block, int offset)
            {
                var record = block.Bytes.AsSpan(offset, Length);
                written.Span[..headLength].CopyTo(record);
                requestBody.Span.CopyTo(record[headLength..]);
                responseBody.Span.CopyTo(record[(headLength + requestBody.Length)..]);
                written.Span[headLength..].CopyTo(record[(headLength + requestBody.Length + responseBody.Length)..]);
                return new StoredFlow(this, block, offset);
            }
        }
    }
}
