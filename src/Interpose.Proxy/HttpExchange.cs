namespace Interpose.Proxy;

/// <summary>
/// One request and its response as they pass through the proxy (mitmproxy's "flow"). Hooks receive it at each step
/// and may change the request before it is sent, the response before it is returned, answer without contacting the
/// origin (<see cref="Respond"/>), or end it (<see cref="Kill"/>).
/// </summary>
public sealed class HttpExchange
{
    private Dictionary<string, object?>? _tags;
    private List<IWebSocketObserver>? _webSocketObservers;

    internal HttpExchange(long id, ClientConnection client, HttpRequest request, TimeProvider time, int streamId = 1)
    {
        Id = id;
        Client = client;
        Request = request;
        Timings = new ExchangeTimings(time);
        ClientVersion = request.Version;
        StreamId = streamId;
    }

    /// <summary>The addons this exchange runs, read once when it starts (the proxy's list may be replaced meanwhile).</summary>
    internal Internal.AddonRunner Addons { get; set; } = Internal.AddonRunner.Empty;

    /// <summary>What a <see cref="FlowRecorder"/> keeps between the exchange's hooks (its body captures), held here
    /// rather than in a map keyed by exchange: one field per exchange instead of a concurrent map's entry.</summary>
    internal object? RecorderState { get; set; }

    /// <summary>A number unique within this proxy instance.</summary>
    public long Id { get; }

    /// <summary>The client connection the request arrived on.</summary>
    public ClientConnection Client { get; }

    /// <summary>
    /// The exchange's stream on the client connection: the HTTP/2 stream id, or for HTTP/1.1 the exchange's place on
    /// its connection numbered as mitmproxy does (1, 3, 5, ...), so that both read alike.
    /// </summary>
    public int StreamId { get; }

    /// <summary>The HTTP version the client spoke (1.0, 1.1, or 2.0 over HTTP/2).</summary>
    public Version ClientVersion { get; }

    /// <summary>The HTTP version spoken with the origin, once a response came from one (null otherwise).</summary>
    public Version? ServerVersion { get; internal set; }

    /// <summary>The origin connection used, once one was chosen (null for answers made by a hook).</summary>
    public ServerConnection? Server { get; internal set; }

    /// <summary>The request.</summary>
    public HttpRequest Request { get; }

    /// <summary>The response, once received or set by <see cref="Respond"/>.</summary>
    public HttpResponse? Response { get; internal set; }

    /// <summary>Why the exchange failed, if it did.</summary>
    public ExchangeError? Error { get; internal set; }

    /// <summary>When each step happened.</summary>
    public ExchangeTimings Timings { get; }

    /// <summary>A place for addons to tag the exchange (names are compared ordinally).</summary>
    public IDictionary<string, object?> Tags => _tags ??= new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>The tags when any were set, else null: for readers, which need not create the map (most exchanges have
    /// none).</summary>
    internal IReadOnlyDictionary<string, object?>? TagsIfAny => _tags is { Count: > 0 } tags ? tags : null;

    /// <summary>True when the response was made by a hook rather than received from the origin.</summary>
    public bool IsSynthetic { get; private set; }

    /// <summary>True once a hook called <see cref="Kill"/>.</summary>
    public bool IsKilled { get; private set; }

    /// <summary>
    /// Answers the client with <paramref name="response"/>. Called before the request is sent, the origin is never
    /// contacted; called in a response hook, it replaces the origin's response.
    /// </summary>
    /// <param name="response">The response to send.</param>
    /// <exception cref="ArgumentNullException"><paramref name="response"/> is null.</exception>
    public void Respond(HttpResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        Response = response;
        IsSynthetic = true;
    }

    /// <summary>
    /// The exchange as the filter language reads it (<see cref="Core.Filters.FlowFilter.Matches"/>), as it is now: a
    /// request alone (<c>~q</c>) until there is a response. Bodies are those in hand (buffered or set by a hook), empty
    /// while they stream. Take a new view after the exchange changed.
    /// </summary>
    /// <returns>The view.</returns>
    public Core.Filters.IFilterableFlow AsFilterable() => new Rules.ExchangeFilterView(this);

    /// <summary>
    /// Watches the messages of the WebSocket this request asks for, if the origin accepts it (see
    /// <see cref="IWebSocketObserver"/>). Add observers in a request hook; the relay reads messages only when one was added.
    /// </summary>
    /// <param name="observer">The observer.</param>
    /// <exception cref="ArgumentNullException"><paramref name="observer"/> is null.</exception>
    public void ObserveWebSocket(IWebSocketObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        (_webSocketObservers ??= []).Add(observer);
    }

    /// <summary>The observers added with <see cref="ObserveWebSocket"/>; null when none.</summary>
    internal IReadOnlyList<IWebSocketObserver>? WebSocketObservers => _webSocketObservers;

    /// <summary>Ends the exchange: the client connection is closed without a response (as mitmproxy's kill).</summary>
    public void Kill() => IsKilled = true;
}
