namespace Interpose.Proxy.Intercept;

/// <summary>One exchange paused by <see cref="InterceptAddon"/>, waiting for <see cref="InterceptAddon.Resume"/> or
/// <see cref="InterceptAddon.Kill"/>.</summary>
public sealed class InterceptedExchange
{
    private const int Pending = 0;
    private const int Decided = 1;
    private const int TimedOutState = 2;

    private readonly TaskCompletionSource<InterceptEdit?> _decision = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // How the pause ended, claimed before the decision completes: the waiter runs as soon as the task completes (on
    // another thread, continuations being asynchronous), and must then read whether the time ran out.
    private int _state;

    internal InterceptedExchange(HttpExchange exchange, InterceptPhase phase, DateTimeOffset pausedAt)
    {
        Exchange = exchange;
        Phase = phase;
        PausedAt = pausedAt;
    }

    /// <summary>The key of this pause: the exchange's id and the phase (an exchange pauses at most once per phase).</summary>
    public string Key => Exchange.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) + (Phase == InterceptPhase.Request ? "q" : "s");

    /// <summary>The exchange; read it, but change it only through <see cref="InterceptAddon.Resume"/>.</summary>
    public HttpExchange Exchange { get; }

    /// <summary>Whether the request or the response is held.</summary>
    public InterceptPhase Phase { get; }

    /// <summary>When the exchange was paused.</summary>
    public DateTimeOffset PausedAt { get; }

    /// <summary>Completes with the edit (resume) or null (kill).</summary>
    internal Task<InterceptEdit?> Decision => _decision.Task;

    /// <summary>True when the pause ended because its time ran out.</summary>
    internal bool TimedOut => Volatile.Read(ref _state) == TimedOutState;

    internal bool TryDecide(InterceptEdit? edit) => Interlocked.CompareExchange(ref _state, Decided, Pending) == Pending && _decision.TrySetResult(edit);

    internal void TimeOut()
    {
        if (Interlocked.CompareExchange(ref _state, TimedOutState, Pending) == Pending)
        {
            _decision.TrySetResult(null);
        }
    }
}
