using System.Runtime.CompilerServices;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Enforces a <see cref="MinDataRate"/> on one direction of one connection: the owner flow marks the waits that are the
/// peer's to end (<see cref="WaitStarted"/> / <see cref="WaitEnded"/>) and the bytes moved; one timer checks the
/// average and cancels <see cref="Token"/> when the peer is too slow. <see cref="Violated"/> tells that apart from the
/// parent's cancellation.
/// </summary>
/// <remarks>
/// <para>
/// Kestrel's rule (TimeoutControl): the rate is the bytes moved divided by the time spent waiting on the peer since
/// the body started; it is enforced once that time passes the grace period. Only a wait in progress can be the peer's
/// fault, so the monitor cancels only while one is. A peer that sends (or reads) nothing at all is caught too: the
/// timer needs no byte to fire.
/// </para>
/// <para>
/// The hot path is a timestamp and a field write per wait that did not complete at once, nothing per chunk that
/// did; no lock and no timer change. The timer is re-armed only from its own callback: for the moment the average
/// could first fall below the rate, or a heartbeat later when no wait is in progress. One owner flow uses it at a
/// time; it is re-armed per body (<see cref="Start"/> / <see cref="Stop"/>) like <see cref="TimeoutScope"/>.
/// </para>
/// </remarks>
internal sealed class DataRateMonitor : IDisposable
{
    /// <summary>When no wait is in progress, the next look at most this much later: 1 s, Kestrel's heartbeat interval.</summary>
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(1);

    /// <summary>A fast body earns a distant deadline; the timer still looks again after an hour (far under ITimer's limit).</summary>
    private static readonly TimeSpan MaxCheckInterval = TimeSpan.FromHours(1);

    /// <summary>Never re-arm for less than this, so rounding cannot make the timer spin.</summary>
    private static readonly TimeSpan MinCheckInterval = TimeSpan.FromMilliseconds(1);

    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private readonly StrongBox<long>? _open;
    private CancellationTokenSource _cts = new();
    private CancellationTokenRegistration _parent;
    private CancellationToken _registeredParent;
    private MinDataRate? _rate;
    private bool _armed;
    private bool _disposed;
    private volatile bool _violated;

    // Written by the owner flow, read by the timer; one 64-bit field so that the timer never sees half an update.
    // >= 0: no wait in progress; the timestamp ticks waited on the peer so far.
    // <  0: a wait in progress; ~value is the timestamp at which the ticks waited so far would have been zero, so the
    //       ticks waited now are now - ~value.
    private long _waited;
    private long _bytes;

    // Owner flow only: false until the first byte when the clock starts with it (Expect: 100-continue).
    private bool _counting;

    /// <param name="time">The clock.</param>
    /// <param name="open">Counts the monitors made and not yet disposed (the proxy's, to tell a leak); none when null.</param>
    public DataRateMonitor(TimeProvider time, StrongBox<long>? open = null)
    {
        _time = time;
        _open = open;
        if (open is not null)
        {
            Interlocked.Increment(ref open.Value);
        }

        _timer = time.CreateTimer(static state => ((DataRateMonitor)state!).Check(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The current use's token: cancelled by the parent, or when the peer fell below the rate.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>True when the token was cancelled because the peer was too slow.</summary>
    public bool Violated => _violated;

    /// <summary>The rate of the current (or last) use.</summary>
    public MinDataRate? Rate => _rate;

    /// <summary>Bytes moved in the current (or last) use.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    /// <summary>Time spent waiting on the peer in the current (or last) use, up to now.</summary>
    public TimeSpan Waited
    {
        get
        {
            var waited = Volatile.Read(ref _waited);
            return TicksToTimeSpan(waited < 0 ? _time.GetTimestamp() - ~waited : waited);
        }
    }

    /// <summary>Starts measuring a body: no time waited, no bytes, a fresh (or reset) token.</summary>
    /// <param name="rate">The rate to enforce.</param>
    /// <param name="parent">Cancels the token too.</param>
    /// <param name="fromFirstByte">Waits count only once a byte moved (the peer may rightly wait for something first).</param>
    public void Start(MinDataRate rate, CancellationToken parent, bool fromFirstByte = false)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_cts.TryReset())
            {
                _cts.Dispose();
                _cts = new CancellationTokenSource();
            }

            _rate = rate;
            _violated = false;
            Volatile.Write(ref _waited, 0);
            Volatile.Write(ref _bytes, 0);
            _counting = !fromFirstByte;
            _armed = true;

            // The average cannot be enforced before the grace period's worth of waiting, so not before that much time.
            _timer.Change(Clamp(rate.GracePeriod), Timeout.InfiniteTimeSpan);
        }

        // Outside the lock: an already-cancelled parent runs the callback at once, and it takes the lock. The same
        // parent as last time (the proxy's abort token, for every response of a connection) keeps its registration:
        // a registration per body was an allocation per exchange. The callback does nothing unless armed.
        if (parent != _registeredParent || !parent.CanBeCanceled)
        {
            _parent.Dispose();
            _parent = parent.UnsafeRegister(static state => ((DataRateMonitor)state!).CancelFromParent(), this);
            _registeredParent = parent;
        }
        else if (parent.IsCancellationRequested)
        {
            CancelFromParent();
        }
    }

    /// <summary>Ends the use: neither the timer nor the parent cancels the token any more (the parent's registration stays, disarmed, for the next use).</summary>
    public void Stop()
    {
        lock (_lock)
        {
            _armed = false;
            if (!_disposed)
            {
                _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>The proxy now waits on the peer (a read that did not complete at once, or a write).</summary>
    public void WaitStarted()
    {
        var waited = _waited;
        if (_counting && waited >= 0)
        {
            Volatile.Write(ref _waited, ~(_time.GetTimestamp() - waited));
        }
    }

    /// <summary>The wait on the peer ended (whether or not bytes came).</summary>
    public void WaitEnded()
    {
        var waited = _waited;
        if (waited < 0)
        {
            Volatile.Write(ref _waited, _time.GetTimestamp() - ~waited);
        }
    }

    /// <summary>The peer moved <paramref name="count"/> more bytes.</summary>
    public void Transferred(long count)
    {
        Volatile.Write(ref _bytes, _bytes + count);
        _counting |= count > 0;
    }

    public void Dispose()
    {
        Stop();
        _parent.Dispose();
        _parent = default;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _timer.Dispose();
            _cts.Dispose();
            if (_open is not null)
            {
                Interlocked.Decrement(ref _open.Value);
            }
        }
    }

    private void Check()
    {
        lock (_lock)
        {
            if (!_armed || _disposed || _rate is not { } rate)
            {
                return;
            }

            // The bytes are read after the wait state: the flow adds bytes before it starts the next wait, so a wait
            // seen in progress is never paired with too few bytes.
            var waited = Volatile.Read(ref _waited);
            var bytes = Volatile.Read(ref _bytes);
            var inProgress = waited < 0;
            var ticksWaited = inProgress ? _time.GetTimestamp() - ~waited : waited;

            // The most waiting the bytes so far allow: the grace period, or as long as they take at the minimum rate.
            var allowed = Math.Max(rate.GracePeriod.TotalSeconds, bytes / rate.BytesPerSecond);
            var secondsWaited = ticksWaited / (double)_time.TimestampFrequency;
            if (inProgress && secondsWaited >= allowed)
            {
                // NOTE: cancelled under the lock, as TimeoutScope does, so that a late look cannot cancel the next
                // body's token after Stop/Start; the lock is reentrant should a read's continuation run inline.
                _violated = true;
                _cts.Cancel();
                return;
            }

            // The average can next fall below the rate after (allowed - waited) more waiting; with no wait in
            // progress, a wait that starts right after this look is seen a heartbeat later at most.
            var next = TimeSpan.FromSeconds(Math.Min(allowed - secondsWaited, MaxCheckInterval.TotalSeconds));
            _timer.Change(Clamp(inProgress ? next : TimeSpan.FromTicks(Math.Max(next.Ticks, Heartbeat.Ticks))), Timeout.InfiniteTimeSpan);
        }
    }

    private void CancelFromParent()
    {
        lock (_lock)
        {
            if (_armed && !_disposed)
            {
                _cts.Cancel();
            }
        }
    }

    private TimeSpan TicksToTimeSpan(long ticks) => TimeSpan.FromSeconds(ticks / (double)_time.TimestampFrequency);

    private static TimeSpan Clamp(TimeSpan due) => due < MinCheckInterval ? MinCheckInterval : due;
}

/// <summary>
/// The client moved a body slower than its <see cref="MinDataRate"/>: sending the request body
/// (<see cref="ExchangePhase.ClientRequest"/>, answered 408 when no response byte was sent yet) or reading the response
/// (<see cref="ExchangePhase.ClientResponse"/>, closed).
/// </summary>
internal sealed class MinDataRateException(ExchangePhase phase, string message, Exception inner) : Exception(message, inner)
{
    public ExchangePhase Phase { get; } = phase;

    /// <summary>Logs and counts a client below the rate (either protocol); returns the failure that ends the exchange.</summary>
    public static MinDataRateException ClientTooSlow(ProxyRuntime rt, ClientConnection client, DataRateMonitor monitor, HttpRequest request, ExchangePhase phase, OperationCanceledException cancelled)
    {
        var rate = monitor.Rate!;
        var bytes = monitor.Bytes;
        var waited = monitor.Waited;
        rt.Metrics.DataRateViolated(phase);
        ProxyLog.MinDataRateViolated(rt.Logger, client, request.Host, request.Port, phase, rate, bytes, waited.TotalSeconds);
        var what = phase == ExchangePhase.ClientRequest ? "sent the request body" : "read the response";
        return new MinDataRateException(phase, string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"the client {what} below the minimum data rate of {rate} ({bytes} bytes in {waited.TotalSeconds:0.0} s of waiting on it)"), cancelled);
    }
}
