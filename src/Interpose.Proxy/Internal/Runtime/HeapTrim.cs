using System.Runtime.InteropServices;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Gives memory back to the system after a burst of client connections, on a timer, off the connections' paths: the C
/// heap's free memory (glibc <c>malloc_trim(0)</c>) once enough connections came or went, and the garbage collector's
/// free committed memory once the proxy has gone quiet after such a burst.
/// </summary>
/// <remarks>
/// <para>
/// OpenSSL allocates through malloc, and each TLS handshake frees most of what it allocated; glibc keeps those free
/// chunks in its arenas (one per thread that allocated, up to 8 per core) and returns only the top of the main heap
/// on its own. Measured (docs/performance.md, "Idle connections"): with 1,000 idle intercepted connections held, a
/// <c>malloc_trim(0)</c> took the proxy's RSS down by about 10 MiB; after they closed, RSS stayed 28 MiB above where
/// it started until a trim brought it back to the start. The trim walks every arena under its lock, so it runs only
/// when enough connections came or went since the last one, at most once per <see cref="Interval"/>. Only on Linux
/// with glibc (<c>malloc_trim</c> found in libc.so.6); elsewhere (musl, Windows, macOS) no trim.
/// </para>
/// <para>
/// The collector grows its committed memory for a burst (5,000 connections set up: 57 MB committed) and gives it back
/// only in later collections, which a quiet proxy does not run: RSS stayed about 45 MiB above where it started, for
/// good (docs/performance.md, "Memory after a burst"). So after a burst, once a whole interval passed without a gen0
/// collection (a busy proxy runs several a second; so does any busy process embedding it), and when the committed
/// memory grew by <see cref="MinGrowthBytes"/> or more since the proxy started or since the last such collection, one
/// aggressive collection compacts the heap (the burst's objects are dead by then) and decommits the rest. A busy
/// proxy is never collected this way, and a quiet one at most once per burst.
/// </para>
/// </remarks>
internal sealed unsafe class HeapTrim : IDisposable
{
    /// <summary>
    /// How often the count is looked at: 5 s, the settling time the idle benchmark gives a burst (bench/load's
    /// IDLE_SETTLE_S); a trim follows a burst within that, and a steady load trims at most this often.
    /// </summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Connections opened or closed since the last trim before the next: 256, the per-client connection cap
    /// (ProxyOptions): a few hundred handshakes leave megabytes of free chunks (about 10 KiB each, measured), while a
    /// quiet proxy is never trimmed.
    /// </summary>
    public const int DefaultMinChurn = 256;

    /// <summary>
    /// Growth of the collector's committed memory (since the start, or since the last collection of this kind) below
    /// which a quiet proxy is not collected: 16 MiB, four gen0 budgets of the command (System.GC.Gen0MaxBudget); the
    /// soak's steady state moves by about that much (18 to 22 MB committed), a burst of 5,000 connections by 40 MB.
    /// </summary>
    public const long MinGrowthBytes = 16L * 1024 * 1024;

    private static readonly delegate* unmanaged<nuint, int> MallocTrim = LoadMallocTrim();

    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private readonly int _minChurn;
    private readonly ManagedHeap _heap;
    private readonly Action<int, TimeSpan>? _trimmed;
    private readonly Action<long, long, TimeSpan>? _released;
    private readonly Lock _tick = new();
    private int _churn;
    private bool _burst;
    private int _lastGen0;
    private long _baseline;

    /// <param name="time">The proxy's clock.</param>
    /// <param name="minChurn">Connections opened or closed between trims.</param>
    /// <param name="trimmed">Told each C heap trim: the churn it followed and how long it took.</param>
    /// <param name="released">Told each collection after a burst: committed bytes before and after, how long it took.</param>
    /// <param name="heap">The collector, as the timer sees it (<see cref="ManagedHeap.Process"/> unless a test says).</param>
    public HeapTrim(TimeProvider time, int minChurn, Action<int, TimeSpan>? trimmed, Action<long, long, TimeSpan>? released = null, ManagedHeap? heap = null)
    {
        _time = time;
        _minChurn = minChurn;
        _trimmed = trimmed;
        _released = released;
        _heap = heap ?? ManagedHeap.Process;
        _lastGen0 = _heap.Gen0Collections();
        _baseline = _heap.Committed();
        _timer = time.CreateTimer(static s => ((HeapTrim)s!).Tick(), this, Interval, Interval);
    }

    /// <summary>Whether this process's C library has <c>malloc_trim</c> (glibc).</summary>
    public static bool Supported => MallocTrim != null;

    /// <summary>A client connection was opened or closed.</summary>
    public void Note() => Interlocked.Increment(ref _churn);

    public void Dispose() => _timer.Dispose();

    private void Tick()
    {
        // One tick at a time: a manual clock may fire the next while a slow collection still runs.
        lock (_tick)
        {
            var gen0 = _heap.Gen0Collections();
            var quiet = gen0 == _lastGen0;
            _lastGen0 = gen0;
            if (Volatile.Read(ref _churn) >= _minChurn)
            {
                // A burst, still going or just over: trim the C heap now, give the collector's memory back once quiet.
                var churn = Interlocked.Exchange(ref _churn, 0);
                _burst = true;
                if (Supported)
                {
                    var started = _time.GetTimestamp();
                    MallocTrim(0);
                    _trimmed?.Invoke(churn, _time.GetElapsedTime(started));
                }

                return;
            }

            if (!_burst || !quiet)
            {
                return;
            }

            _burst = false;
            var committed = _heap.Committed();
            if (committed - _baseline < MinGrowthBytes)
            {
                return;
            }

            var began = _time.GetTimestamp();
            _heap.Release();
            if (Supported)
            {
                // The collection ran finalizers' frees and released native buffers: trim what it freed too.
                MallocTrim(0);
            }

            _lastGen0 = _heap.Gen0Collections();
            _baseline = _heap.Committed();
            _released?.Invoke(committed, _baseline, _time.GetElapsedTime(began));
        }
    }

    private static delegate* unmanaged<nuint, int> LoadMallocTrim()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out var libc))
        {
            return null;
        }

        return NativeLibrary.TryGetExport(libc, "malloc_trim", out var trim) ? (delegate* unmanaged<nuint, int>)trim : null;
    }
}

/// <summary>What <see cref="HeapTrim"/> reads of the garbage collector and asks of it.</summary>
/// <param name="Gen0Collections">Gen0 collections so far (every collection counts: gen1 and gen2 include gen0).</param>
/// <param name="Committed">The collector's committed bytes, as of its last collection.</param>
/// <param name="Release">Compacts the heap and gives its free committed memory back.</param>
internal sealed record ManagedHeap(Func<int> Gen0Collections, Func<long> Committed, Action Release)
{
    /// <summary>This process's collector. Release is an aggressive collection (.NET 7+: compacting, blocking, and
    /// decommitting as much as it can), which also resets the collector's tuning, as after a quiet spell it should.</summary>
    public static ManagedHeap Process { get; } = new(
        static () => GC.CollectionCount(0),
        static () => GC.GetGCMemoryInfo().TotalCommittedBytes,
        static () => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true));
}
