using System.Runtime.InteropServices;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Gives the C heap's free memory back to the system (glibc <c>malloc_trim(0)</c>) after a burst of client
/// connections, on a timer, off the connections' paths.
/// </summary>
/// <remarks>
/// <para>
/// OpenSSL allocates through malloc, and each TLS handshake frees most of what it allocated; glibc keeps those free
/// chunks in its arenas (one per thread that allocated, up to 8 per core) and returns only the top of the main heap
/// on its own. Measured (docs/performance.md, "Idle connections"): with 1,000 idle intercepted connections held, a
/// <c>malloc_trim(0)</c> took the proxy's RSS down by about 10 MiB; after they closed, RSS stayed 28 MiB above where
/// it started until a trim brought it back to the start. The trim walks every arena under its lock, so it runs only
/// when enough connections came or went since the last one, at most once per <see cref="Interval"/>.
/// </para>
/// <para>
/// Only on Linux with glibc (<c>malloc_trim</c> found in libc.so.6); elsewhere (musl, Windows, macOS) nothing.
/// </para>
/// </remarks>
internal sealed unsafe class NativeHeapTrim : IDisposable
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

    private static readonly delegate* unmanaged<nuint, int> MallocTrim = LoadMallocTrim();

    private readonly TimeProvider _time;
    private readonly ITimer? _timer;
    private readonly int _minChurn;
    private readonly Action<int, TimeSpan>? _trimmed;
    private int _churn;

    /// <param name="time">The proxy's clock.</param>
    /// <param name="minChurn">Connections opened or closed between trims.</param>
    /// <param name="trimmed">Told each trim: the churn it followed and how long it took.</param>
    public NativeHeapTrim(TimeProvider time, int minChurn, Action<int, TimeSpan>? trimmed)
    {
        _time = time;
        _minChurn = minChurn;
        _trimmed = trimmed;
        if (Supported)
        {
            _timer = time.CreateTimer(static s => ((NativeHeapTrim)s!).Tick(), this, Interval, Interval);
        }
    }

    /// <summary>Whether this process's C library has <c>malloc_trim</c> (glibc).</summary>
    public static bool Supported => MallocTrim != null;

    /// <summary>A client connection was opened or closed.</summary>
    public void Note() => Interlocked.Increment(ref _churn);

    public void Dispose() => _timer?.Dispose();

    private void Tick()
    {
        if (Volatile.Read(ref _churn) < _minChurn)
        {
            return;
        }

        var churn = Interlocked.Exchange(ref _churn, 0);
        var started = _time.GetTimestamp();
        MallocTrim(0);
        _trimmed?.Invoke(churn, _time.GetElapsedTime(started));
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
