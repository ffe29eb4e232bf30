namespace Interpose.Proxy.Intercept;

/// <summary>One exchange paused by <see cref="InterceptAddon"/>, waiting for <see cref="InterceptAddon.Resume"/> or
/// <see cref="InterceptAddon.Kill"/>.</summary>
public sealed class InterceptedExchange
{
    private readonly TaskCompletionSource<InterceptEdit?> _decision = new(TaskCreationOptions.RunContinuationsAsynchronously);

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
    internal bool TimedOut { get; private set; }

    internal bool TryDecide(InterceptEdit? edit) => _decision.TrySetResult(edit);

    internal void TimeOut()
    {
        if (_decision.TrySetResult(null))
        {
            TimedOut = true;
        }
    }
}
