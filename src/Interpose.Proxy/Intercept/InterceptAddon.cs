using System.Collections.Concurrent;
using Interpose.Core.Filters;
using Interpose.Core.Http;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Rules;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Proxy.Intercept;

/// <summary>
/// mitmproxy's intercept: exchanges that match <see cref="Filter"/> are paused with their request complete (before it
/// goes to the origin) and again with their response complete (before it goes to the client), until someone calls
/// <see cref="Resume"/> (optionally with edits) or <see cref="Kill"/>. Works per exchange, so per stream on HTTP/2.
/// </summary>
/// <remarks>
/// A pause is an awaited <see cref="TaskCompletionSource{TResult}"/>: no thread is held. It is bounded twice: by
/// <see cref="Timeout"/> (a paused exchange that is not resumed in time is answered 504 with the reason), and by
/// <see cref="MaxPaused"/> (past it, matching exchanges pass without pausing and a warning is logged), so a forgotten
/// intercept filter cannot pile up connections. The client going away (the hook's token) ends the pause at once.
/// </remarks>
public sealed class InterceptAddon : ProxyAddon
{
    /// <summary>Paused exchanges at most: each holds a client connection and its buffered bodies. mitmproxy has no
    /// cap; 1,000 is far more than a person can edit, and a bounded amount of memory (bodies are capped by the
    /// pipeline's buffering limits).</summary>
    public const int DefaultMaxPaused = 1000;

    /// <summary>The tag on an exchange whose pause timed out (<see cref="HttpExchange.Tags"/>).</summary>
    public const string TimedOutTag = "intercept.timed_out";

    /// <summary>The final status codes an edit may set: RFC 9110 §15 defines 1xx as interim and nothing above 5xx;
    /// <see cref="HttpResponse"/>, the block list and server replay's extra take the same range.</summary>
    private const int MinFinalStatus = 200;

    /// <summary>The highest status code an edit may set (RFC 9110 §15: classes 1xx to 5xx).</summary>
    private const int MaxFinalStatus = 599;

    private readonly ConcurrentDictionary<string, InterceptedExchange> _paused = new(StringComparer.Ordinal);
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private FlowFilter? _filter;

    /// <summary>Creates the addon with no filter (nothing is paused until <see cref="Filter"/> is set).</summary>
    /// <param name="timeout">How long an exchange stays paused at most; the proxy's response-head timeout
    /// (<see cref="ProxyTimeouts.ResponseHead"/>, 60 s) is the usual choice: the client waits that long for an origin too.</param>
    /// <param name="timeProvider">The clock; the system's when null.</param>
    /// <param name="logger">Where pauses and timeouts are logged.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is not positive.</exception>
    public InterceptAddon(TimeSpan timeout, TimeProvider? timeProvider = null, ILogger? logger = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        Timeout = timeout;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Raised (on any thread) when an exchange is paused or leaves the paused list.</summary>
    public event EventHandler? Changed;

    /// <summary>The exchanges to pause; null pauses nothing. Changing it does not release exchanges already paused. An
    /// exchange kept out of the recording (<see cref="FlowRecorder.NotRecordedTag"/>, as the web UI's own requests
    /// through the proxy are) is never paused: nobody would see it in the flow list.</summary>
    public FlowFilter? Filter
    {
        get => Volatile.Read(ref _filter);
        set => Volatile.Write(ref _filter, value);
    }

    /// <summary>How long an exchange stays paused at most.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Paused exchanges at most (<see cref="DefaultMaxPaused"/>).</summary>
    public int MaxPaused { get; init; } = DefaultMaxPaused;

    /// <summary>The exchanges paused now, oldest first.</summary>
    public IReadOnlyList<InterceptedExchange> Paused => [.. _paused.Values.OrderBy(p => p.PausedAt).ThenBy(p => p.Exchange.Id)];

    /// <inheritdoc/>
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (Filter is { } filter && (RulesAddon.ReadsBodies(filter.Root) || filter.Matches(exchange.AsFilterable())))
        {
            // The request is edited whole: its body must be in hand when it pauses.
            exchange.Request.BufferBody = true;
        }

        return default;
    }

    /// <inheritdoc/>
    public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken) =>
        PauseIfMatchingAsync(exchange, InterceptPhase.Request, cancellationToken);

    /// <inheritdoc/>
    public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (exchange.Response is { } response && Filter is { } filter && (RulesAddon.ReadsBodies(filter.Root) || filter.Matches(exchange.AsFilterable())))
        {
            response.BufferBody = true;
        }

        return default;
    }

    /// <inheritdoc/>
    public override ValueTask ResponseAsync(HttpExchange exchange, CancellationToken cancellationToken) =>
        PauseIfMatchingAsync(exchange, InterceptPhase.Response, cancellationToken);

    /// <summary>Resumes a paused exchange, first applying <paramref name="edit"/> when given.</summary>
    /// <param name="key">The pause's <see cref="InterceptedExchange.Key"/>.</param>
    /// <param name="edit">The changes, or null to resume unchanged.</param>
    /// <returns>False when no exchange is paused under <paramref name="key"/> (resumed, killed or timed out already).</returns>
    /// <exception cref="ArgumentException">The edit is invalid (a URL that is not absolute http(s), a method or header
    /// name that is not a token, a header value with CR, LF, NUL or a character above U+00FF, a status code outside
    /// 200-599); nothing is changed and the exchange stays paused.</exception>
    public bool Resume(string key, InterceptEdit? edit = null)
    {
        if (!_paused.TryGetValue(key, out var paused))
        {
            return false;
        }

        if (edit is not null)
        {
            Validate(edit, paused.Phase);
        }

        return Decide(key, edit ?? new InterceptEdit());
    }

    /// <summary>Kills a paused exchange: the client connection is closed without a response, as mitmproxy's kill.</summary>
    /// <param name="key">The pause's <see cref="InterceptedExchange.Key"/>.</param>
    /// <returns>False when no exchange is paused under <paramref name="key"/>.</returns>
    public bool Kill(string key) => Decide(key, null);

    private bool Decide(string key, InterceptEdit? edit) => _paused.TryGetValue(key, out var paused) && paused.TryDecide(edit);

    private async ValueTask PauseIfMatchingAsync(HttpExchange exchange, InterceptPhase phase, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (Filter is not { } filter || exchange.IsKilled || (phase == InterceptPhase.Request && exchange.IsSynthetic)
            || exchange.Tags.ContainsKey(TimedOutTag) || exchange.Tags.ContainsKey(FlowRecorder.NotRecordedTag) || !filter.Matches(exchange.AsFilterable()))
        {
            return;
        }

        var url = ExchangeFilterView.PrettyUrl(exchange.Request) ?? "";
        if (_paused.Count >= MaxPaused)
        {
            ProxyLog.InterceptFull(_logger, MaxPaused, exchange.Request.Method, url);
            return;
        }

        var paused = new InterceptedExchange(exchange, phase, _timeProvider.GetUtcNow());
        _paused[paused.Key] = paused;
        ProxyLog.InterceptPaused(_logger, exchange.Request.Method, url, phase);
        OnChanged();
        InterceptEdit? edit;
        try
        {
            // One timer per pause on the proxy's clock; a decision, the timer or the client's token ends the wait.
            using var timer = _timeProvider.CreateTimer(static state => ((InterceptedExchange)state!).TimeOut(), paused, Timeout, System.Threading.Timeout.InfiniteTimeSpan);
            edit = await paused.Decision.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _paused.TryRemove(paused.Key, out _);
            OnChanged();
        }

        if (paused.TimedOut)
        {
            ProxyLog.InterceptTimedOut(_logger, exchange.Request.Method, url, phase, Timeout.TotalSeconds);
            // The 504 is this addon's own answer: it is not paused again on its way out.
            exchange.Tags[TimedOutTag] = true;
            exchange.Respond(HttpResponse.Text(504, $"Interpose: the intercepted {(phase == InterceptPhase.Request ? "request" : "response")} was not resumed within {Timeout.TotalSeconds:0} s\n"));
            return;
        }

        if (edit is null)
        {
            exchange.Kill();
            return;
        }

        Apply(exchange, phase, edit);
    }

    private static void Validate(InterceptEdit edit, InterceptPhase phase)
    {
        // RFC 9110 §9.1: method = token.
        if (edit.Method is { } method && !HttpChars.IsToken(method))
        {
            throw new ArgumentException("The method must be a non-empty token.", nameof(edit));
        }

        if (edit.Url is { } url && (phase != InterceptPhase.Request || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || RequestTargetParser.RawPathAndQuery(url) is null))
        {
            throw new ArgumentException("The URL must be an absolute http or https URL, on a request.", nameof(edit));
        }

        // The paused response is the final one: a 1xx sent in its place is an interim answer after which the client
        // waits for a final one that never comes (RFC 9110 §15.2). 200-599 as HttpResponse and the block list take.
        if (edit.StatusCode is { } status && (phase != InterceptPhase.Response || status is < MinFinalStatus or > MaxFinalStatus))
        {
            throw new ArgumentException($"The status code must be a final status, {MinFinalStatus}-{MaxFinalStatus}, on a response.", nameof(edit));
        }

        // Checked as HttpHeaders.Add checks them, all before anything changes: Apply clears the fields first, so a
        // field refused halfway would leave the message without its header section (RFC 9110 §5.1 token names; §5.5
        // values without CR, LF, NUL, and Latin-1 only).
        if (edit.Headers is { } headers && headers.Any(h => h.Key is null || h.Value is null || !HttpHeaders.IsValidName(h.Key) || !HttpHeaders.IsValidValue(h.Value)))
        {
            throw new ArgumentException("Header names must be tokens (RFC 9110 §5.1) and values must not contain CR, LF, NUL or characters above U+00FF.", nameof(edit));
        }
    }

    private static void Apply(HttpExchange exchange, InterceptPhase phase, InterceptEdit edit)
    {
        HttpMessage message = phase == InterceptPhase.Request ? exchange.Request : exchange.Response!;
        if (phase == InterceptPhase.Request)
        {
            var request = exchange.Request;
            if (edit.Method is { } method)
            {
                request.Method = method;
            }

            if (edit.Url is { } text)
            {
                var url = new Uri(text);
                var hostChanged = !string.Equals(url.IdnHost, request.Host, StringComparison.OrdinalIgnoreCase) || url.Port != request.Port;
                request.Scheme = url.Scheme;
                request.Host = url.IdnHost;
                request.Port = url.Port;
                // As written: Uri's PathAndQuery would remove dot segments and unescape (%7E to ~).
                request.Path = RequestTargetParser.RawPathAndQuery(text)!;

                // As map-remote and mitmproxy's Request.url setter: the Host field follows the new authority (RFC 9110
                // §7.2), or the origin gets the old one; an edit that gives the header section gives its own Host.
                if (hostChanged && edit.Headers is null && request.Headers.Contains("Host"))
                {
                    request.Headers.Set("Host", request.Authority);
                }
            }
        }
        else if (edit.StatusCode is { } status && status != exchange.Response!.StatusCode)
        {
            // The old phrase belongs to the old status ("404 OK"); the edit has none of its own, so the standard one.
            exchange.Response.StatusCode = status;
            exchange.Response.ReasonPhrase = ReasonPhrases.For(status);
        }

        if (edit.Headers is { } headers)
        {
            message.Headers.Clear();
            foreach (var (name, value) in headers)
            {
                message.Headers.Add(name, value);
            }
        }

        if (edit.Body is { } body)
        {
            message.SetBody(body);
        }
    }

    private void OnChanged() => Changed?.Invoke(this, EventArgs.Empty);
}
