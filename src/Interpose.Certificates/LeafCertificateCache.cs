using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Certificates;

/// <summary>
/// Forged leaf certificates by host name, ready for <see cref="System.Net.Security.SslStream"/>: bounded, least
/// recently used first out, refreshed before expiry, and forging each name once however many connections ask at once.
/// </summary>
/// <remarks>
/// <para>
/// Flow of <see cref="GetAsync"/>: (1) validate and canonicalise the name; (2) under a short lock, a fresh hit is
/// returned at once, a pending forge is shared, a leaf near expiry is dropped; (3) a miss starts one forge on the
/// thread pool and evicts beyond <see cref="LeafCertificateCacheOptions.Capacity"/>; (4) callers await the shared forge,
/// each with its own cancellation. A failed forge is removed, so the next request tries again.
/// </para>
/// <para>
/// Eviction does not dispose a leaf at once: a caller may have just received its context and be mid-handshake. Evicted
/// leaves are retired and disposed once <see cref="RetiredLeafGracePeriod"/> has passed (checked on each miss), or when
/// the cache is disposed, which therefore must happen only after the listener using it has stopped.
/// </para>
/// </remarks>
public sealed class LeafCertificateCache : IDisposable
{
    /// <summary>
    /// How long an evicted leaf stays usable before it is disposed: far longer than any TLS handshake timeout
    /// (Kestrel's default is 10 s), so a context handed out just before eviction finishes its handshake.
    /// </summary>
    public static readonly TimeSpan RetiredLeafGracePeriod = TimeSpan.FromMinutes(2);

    private readonly CertificateAuthority _authority;
    private readonly LeafCertificateForge _forge;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly int _capacity;
    private readonly TimeSpan _refreshBefore;
    private readonly X509Certificate2Collection _chain;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _recency = new();
    private readonly Queue<(ForgedLeaf Leaf, DateTimeOffset RetiredAt)> _retired = new();
    private long _hits;
    private long _misses;
    private long _evictions;
    private bool _disposed;

    /// <summary>Creates an empty cache that forges leaves signed by <paramref name="authority"/>.</summary>
    /// <param name="authority">The CA; it must outlive the cache.</param>
    /// <param name="options">Capacity, refresh margin, key policy and clock; defaults when null.</param>
    /// <param name="logger">Logs each forged leaf at Debug with its host and SHA-256 fingerprint.</param>
    /// <exception cref="ArgumentNullException"><paramref name="authority"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The capacity is below 1, or the refresh margin is negative or not
    /// shorter than a leaf's validity.</exception>
    public LeafCertificateCache(CertificateAuthority authority, LeafCertificateCacheOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(authority);
        options ??= new LeafCertificateCacheOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Capacity, 1, nameof(options));
        if (options.RefreshBefore < TimeSpan.Zero || options.RefreshBefore >= LeafCertificateForge.Validity)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.RefreshBefore, "RefreshBefore must be between zero and a leaf's validity.");
        }

        _authority = authority;
        _capacity = options.Capacity;
        _refreshBefore = options.RefreshBefore;
        _timeProvider = options.TimeProvider;
        _logger = logger ?? NullLogger.Instance;
        _forge = new LeafCertificateForge(authority, options.KeyAlgorithm, options.KeyPerHost, options.TimeProvider);

        // The chain sent after the leaf: the CA certificate, without its key.
        _chain = new X509Certificate2Collection(authority.PublicCertificate);
    }

    /// <summary>How many names the cache holds, including forges in progress. Never more than the capacity.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Requests served from the cache, including those that joined a forge in progress.</summary>
    internal long Hits => Interlocked.Read(ref _hits);

    /// <summary>Requests that started a forge.</summary>
    internal long Misses => Interlocked.Read(ref _misses);

    /// <summary>Entries evicted to stay within the capacity.</summary>
    internal long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>Leaves signed so far.</summary>
    internal int ForgeCount => _forge.ForgeCount;

    /// <summary>Whether the key shared by forged leaves exists yet (always false with a key per host).</summary>
    internal bool SharedKeyCreated => _forge.SharedKeyCreated;

    /// <summary>Evicted or replaced leaves not yet disposed.</summary>
    internal int RetiredCount
    {
        get
        {
            lock (_lock)
            {
                return _retired.Count;
            }
        }
    }

    /// <summary>
    /// Returns the leaf certificate context for a host name or IP literal (<c>::1</c> or <c>[::1]</c>), with the chain
    /// leaf then CA, forging it on the thread pool if it is not cached. Concurrent calls for one name forge once.
    /// </summary>
    /// <param name="hostNameOrIp">The name the client asked for (SNI, CONNECT authority or Host), without port.</param>
    /// <param name="cancellationToken">Stops this caller waiting; a forge other callers share still completes.</param>
    /// <returns>A context built once per leaf, for <see cref="SslServerAuthenticationOptions.ServerCertificateContext"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="hostNameOrIp"/> is null.</exception>
    /// <exception cref="CertificateException">The name is empty, too long, malformed or a wildcard, or the CA expired.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public ValueTask<SslStreamCertificateContext> GetAsync(string hostNameOrIp, CancellationToken cancellationToken)
    {
        var host = LeafHostName.Parse(hostNameOrIp);
        Task<SslStreamCertificateContext> pending;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var now = _timeProvider.GetUtcNow();
            if (_entries.TryGetValue(host.Name, out var node))
            {
                var entry = node.Value;
                if (entry.Leaf is not { } leaf)
                {
                    // A forge is in flight: join it.
                    Touch(node);
                    _hits++;
                    return Wait(entry.Task!, cancellationToken);
                }

                if (!NeedsRefresh(leaf, now))
                {
                    Touch(node);
                    _hits++;
                    return new ValueTask<SslStreamCertificateContext>(leaf.Context);
                }

                CertificateLog.LeafRefreshing(_logger, host.Name, leaf.NotAfter);
                Remove(node);
                _retired.Enqueue((leaf, now));
            }

            pending = StartForge(host, now);
        }

        return Wait(pending, cancellationToken);
    }

    /// <summary>
    /// Starts forging the leaf for a name a TLS handshake is about to ask for (a CONNECT authority, before the
    /// ClientHello arrives) and returns at once; nothing happens when the name is cached, being forged, or cannot have a
    /// leaf (the handshake's own <see cref="GetAsync"/> then reports why).
    /// </summary>
    /// <param name="hostNameOrIp">The name, without port.</param>
    public void Prefetch(string hostNameOrIp)
    {
        LeafHostName host;
        try
        {
            host = LeafHostName.Parse(hostNameOrIp);
        }
        catch (CertificateException)
        {
            return;
        }

        Task<SslStreamCertificateContext> pending;
        lock (_lock)
        {
            if (_disposed || _entries.ContainsKey(host.Name))
            {
                return;
            }

            pending = StartForge(host, _timeProvider.GetUtcNow());
        }

        // A failed forge was logged by ForgeEntry and is not cached, so the handshake that wants this name forges again
        // and fails with the reason; nobody may be waiting on this task, so its exception is observed here.
        _ = pending.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Generates the shared leaf key on the thread pool now, so the first handshake does not wait for it.</summary>
    /// <param name="cancellationToken">Stops waiting; the key is still generated.</param>
    /// <returns>A task that completes when the key exists.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public Task WarmUpAsync(CancellationToken cancellationToken) => Task.Run(_forge.EnsureSharedKey, CancellationToken.None).WaitAsync(cancellationToken);

    /// <summary>
    /// Disposes every cached and retired leaf and the shared key. Call it only after every connection that may still be
    /// handshaking with a context from this cache has finished.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var entry in _recency)
            {
                entry.Leaf?.Certificate.Dispose();
            }

            while (_retired.TryDequeue(out var retired))
            {
                retired.Leaf.Certificate.Dispose();
            }

            _entries.Clear();
            _recency.Clear();
        }

        _forge.Dispose();
    }

    /// <summary>A miss, under the lock. A method of its own so the hit path does not allocate the lambda's closure.</summary>
    private Task<SslStreamCertificateContext> StartForge(LeafHostName host, DateTimeOffset now)
    {
        _misses++;
        var entry = new Entry(host.Name);
        _entries.Add(host.Name, _recency.AddFirst(entry));

        // Forging (key generation on first use, signing, chain build) runs on the pool, never on the caller's
        // accept path; the task is stored before anyone can see the entry, since the caller holds the lock.
        entry.Task = Task.Run(() => ForgeEntry(entry, host));
        EvictBeyondCapacity(now);
        DisposeRetired(now);
        return entry.Task;
    }

    // WaitAsync returns the task itself once it has completed, so a finished forge costs no allocation here.
    private static ValueTask<SslStreamCertificateContext> Wait(Task<SslStreamCertificateContext> task, CancellationToken cancellationToken) =>
        new(task.WaitAsync(cancellationToken));

    private SslStreamCertificateContext ForgeEntry(Entry entry, LeafHostName host)
    {
        ForgedLeaf leaf;
        try
        {
            var certificate = _forge.Forge(host);
            try
            {
                // Built once per leaf: the chain is resolved here, not on every handshake (offline: nothing is fetched).
                var context = SslStreamCertificateContext.Create(certificate, _chain, offline: true);
                leaf = new ForgedLeaf(certificate, context, new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero));
            }
            catch
            {
                certificate.Dispose();
                throw;
            }
        }
        catch (Exception ex)
        {
            // A failed forge is not cached: the next request for the name tries again.
            lock (_lock)
            {
                if (_entries.TryGetValue(entry.Key, out var node) && ReferenceEquals(node.Value, entry))
                {
                    Remove(node);
                }
            }

            CertificateLog.LeafForgeFailed(_logger, host.Name, ex);
            throw;
        }

        lock (_lock)
        {
            entry.Leaf = leaf;
            if (_disposed)
            {
                leaf.Certificate.Dispose();
                throw new ObjectDisposedException(nameof(LeafCertificateCache));
            }

            if (entry.Evicted)
            {
                // Evicted while forging: the callers waiting on it still get it, then it retires like any other.
                _retired.Enqueue((leaf, _timeProvider.GetUtcNow()));
            }
        }

        if (_logger.IsEnabled(LogLevel.Debug))
        {
            // Hashing only when Debug is on: forging is otherwise free of logging cost.
            var fingerprint = CertificateFingerprint.Sha256(leaf.Certificate);
            CertificateLog.LeafForged(_logger, host.Name, fingerprint, leaf.NotAfter);
        }

        return leaf.Context;
    }

    private bool NeedsRefresh(ForgedLeaf leaf, DateTimeOffset now) =>

        // A leaf cut short by the CA's own expiry would be re-forged on every use; keep it until it actually expires.
        now >= leaf.NotAfter - _refreshBefore && (leaf.NotAfter < _authority.NotAfter || now >= leaf.NotAfter);

    private void EvictBeyondCapacity(DateTimeOffset now)
    {
        while (_entries.Count > _capacity && _recency.Last is { } oldest)
        {
            Remove(oldest);
            _evictions++;
            if (oldest.Value.Leaf is { } leaf)
            {
                _retired.Enqueue((leaf, now));
            }
            else
            {
                oldest.Value.Evicted = true;
            }
        }
    }

    private void DisposeRetired(DateTimeOffset now)
    {
        while (_retired.TryPeek(out var retired) && now - retired.RetiredAt >= RetiredLeafGracePeriod)
        {
            _retired.Dequeue();
            retired.Leaf.Certificate.Dispose();
        }

        // A flood of distinct names retires leaves faster than the grace period frees them: past one cache's worth,
        // the oldest are released to the GC instead of disposed (a handshake still using one keeps it alive, and its
        // finalizer frees the native key handle), so memory stays bounded by twice the capacity whatever the rate.
        while (_retired.Count > _capacity)
        {
            _retired.Dequeue();
        }
    }

    private void Touch(LinkedListNode<Entry> node)
    {
        if (!ReferenceEquals(_recency.First, node))
        {
            _recency.Remove(node);
            _recency.AddFirst(node);
        }
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        _entries.Remove(node.Value.Key);
        _recency.Remove(node);
    }

    private sealed class Entry(string key)
    {
        public string Key { get; } = key;

        public Task<SslStreamCertificateContext>? Task { get; set; }

        public ForgedLeaf? Leaf { get; set; }

        public bool Evicted { get; set; }
    }

    private sealed record ForgedLeaf(X509Certificate2 Certificate, SslStreamCertificateContext Context, DateTimeOffset NotAfter);
}
