using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Proxy.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Proxy;

/// <summary>
/// An addon that records every HTTP exchange as an <see cref="HttpFlow"/>, and every tunnel relayed as bytes (TLS passed
/// through, raw TCP) as a <see cref="TunnelFlow"/>, and hands them to an <see cref="IFlowSink"/>
/// on a background task. It observes bodies (<see cref="BodyCapture"/>) and never changes or slows the traffic: the
/// proxy never waits on the sink.
/// </summary>
/// <remarks>
/// <code>
///  RequestHeaders / ResponseHeaders hook: attach a BodyCapture to each body
///  Done hook: build the HttpFlow ─┐
///  TunnelClosed hook: TunnelFlow ─┴► bounded queue ─► one consumer task ─► sink.WriteAsync ... FlushAsync when the
///                                   │                                   queue is empty and FlushInterval has passed
///                                   │ half full or over the body budget: queued without body bytes (DroppedBodies)
///                                   └ full: dropped (DroppedFlows); one warning per burst
/// </code>
/// A sink that throws stops recording (one error logged, <see cref="SinkFailure"/> set); later flows count as dropped.
/// Call <see cref="CompleteAsync"/> (or dispose) after the proxy stopped, to write what is queued.
/// </remarks>
public sealed class FlowRecorder : ProxyAddon, IAsyncDisposable
{
    /// <summary>The message bytes one WebSocket flow keeps when bodies are kept whole (no cap): 64 MiB, so that a
    /// socket open for hours still has a bound.</summary>
    internal const long MaxWebSocketBytesWhenUncapped = 64L * 1024 * 1024;

    /// <summary>How long the consumer lets flows gather after the queue stops being empty: 5 ms. At 20,000 exchanges a
    /// second that is about 100 flows a wake-up, far below the half-full mark (2,048 of the default 4,096) where bodies
    /// are dropped, and it delays a flow's arrival in the sink by far less than
    /// <see cref="FlowRecorderOptions.FlushInterval"/> delays its commit. It is a CPU batching window, not a visible
    /// timing, so it runs on the system clock.</summary>
    private static readonly TimeSpan GatherDelay = TimeSpan.FromMilliseconds(5);

    /// <summary>Flows already queued at wake-up that make the gather pointless: about 3 ms of flows at 20,000 exchanges a
    /// second, a batch worth handing to the sink at once.</summary>
    private const int GatherBatch = 64;

    private readonly IFlowSink _sink;
    private readonly FlowRecorderOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Channel<Queued> _queue;
    private readonly ConcurrentDictionary<HttpExchange, Captures> _open = new(ReferenceEqualityComparer.Instance);
    private readonly ConditionalWeakTable<X509Certificate2, byte[]> _der = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _consumer;
    private long _queuedBodyBytes;
    private long _recorded;

    /// <summary>Flows the sink's WriteAsync took (the consumer's own count), and the sink's KeptFlows when the recorder
    /// started (a sink may have kept flows before it).</summary>
    private long _handed;
    private readonly long _keptBefore;
    private long _droppedBodies;
    private long _droppedFlows;
    private int _dropping;

    /// <summary>Creates a recorder writing to <paramref name="sink"/>; its consumer task starts at once.</summary>
    /// <param name="sink">Where flows go.</param>
    /// <param name="options">Caps and queue sizes; the defaults when null.</param>
    /// <param name="logger">Where drops and sink failures are logged; nowhere when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="sink"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The queue capacity is less than 1, or a cap or the flush interval is
    /// negative.</exception>
    public FlowRecorder(IFlowSink sink, FlowRecorderOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        _options = options ?? new FlowRecorderOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.QueueCapacity, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.MaxQueuedBodyBytes, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.FlushInterval, TimeSpan.Zero, nameof(options));
        if (_options.MaxBodyBytes is { } max)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(max, nameof(options));
        }

        _sink = sink;
        _keptBefore = sink.KeptFlows ?? 0;
        _logger = logger ?? NullLogger.Instance;
        _time = _options.TimeProvider ?? TimeProvider.System;
        _queue = Channel.CreateBounded<Queued>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            // TryWrite fails when full: the proxy never waits; the drop is counted instead.
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
        _consumer = ConsumeAsync();
    }

    /// <summary>Flows the sink kept: for a sink that writes in batches and says which it kept
    /// (<see cref="IFlowSink.KeptFlows"/>, as the SQLite store does), those of its committed batches, so a flow waits in
    /// the open batch before it counts, and the flows of a batch that failed never count (they are
    /// <see cref="DroppedFlows"/>); for any other sink, the flows its <see cref="IFlowSink.WriteAsync"/> took.</summary>
    public long Recorded => Interlocked.Read(ref _recorded);

    /// <summary>Flows queued without their body bytes because the queue was filling (length and hash kept).</summary>
    public long DroppedBodies => Interlocked.Read(ref _droppedBodies);

    /// <summary>Flows not recorded at all: the queue was full, the recorder was completed, or the sink had failed (with
    /// those of the sink's batch that the failure lost).</summary>
    public long DroppedFlows => Interlocked.Read(ref _droppedFlows);

    /// <summary>Why the sink stopped taking flows, once it failed; null while it works.</summary>
    public Exception? SinkFailure { get; private set; }

    /// <summary>
    /// The tag that keeps an exchange out of every recording: an addon that runs before the recorder sets it (with any
    /// value) in <see cref="HttpExchange.Tags"/>, as the web UI does for requests addressed to the UI itself.
    /// </summary>
    public const string NotRecordedTag = "not-recorded";

    /// <inheritdoc/>
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (IsNotRecorded(exchange))
        {
            return default;
        }

        // A request whose body is already in hand (none at all, nearly every GET) has nothing to stream past a capture:
        // the flow takes that body as it is (Body below).
        var capture = exchange.Request.HasBody ? null : new BodyCapture(_options.MaxBodyBytes);
        var captures = new Captures(this, _time.GetUtcNow(), capture);
        if (exchange.RecorderState is null)
        {
            exchange.RecorderState = captures;
        }
        else
        {
            // A second recorder on the same proxy (rare): the exchange's slot is taken, so a map keeps its captures.
            _open[exchange] = captures;
        }

        if (capture is not null)
        {
            exchange.Request.Observe(capture);
        }

        if (IsWebSocketRequest(exchange.Request))
        {
            captures.WebSocket = new WebSocketRecording(_options.MaxBodyBytes ?? MaxWebSocketBytesWhenUncapped);
            exchange.ObserveWebSocket(captures.WebSocket);
        }

        return default;
    }

    /// <inheritdoc/>
    public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        if (Find(exchange) is { } captures && exchange.Response is { } response)
        {
            captures.Response = new BodyCapture(_options.MaxBodyBytes);
            response.Observe(captures.Response);
        }

        return default;
    }

    /// <inheritdoc/>
    public override ValueTask DoneAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        var captures = Find(exchange);
        if (captures is null)
        {
            if (IsNotRecorded(exchange))
            {
                return default;
            }

            // The request hook did not run here (an earlier addon failed it): the flow is still worth keeping.
            captures = new Captures(this, _time.GetUtcNow() - exchange.Timings.Total, null);
        }
        else if (ReferenceEquals(exchange.RecorderState, captures))
        {
            exchange.RecorderState = null;
        }
        else
        {
            _open.TryRemove(exchange, out _);
        }

        using (captures)
        {
            Offer(ToFlow(exchange, captures));
        }

        return default;
    }

    private static bool IsNotRecorded(HttpExchange exchange) => exchange.TagsIfAny?.ContainsKey(NotRecordedTag) == true;

    /// <inheritdoc/>
    public override ValueTask TunnelClosedAsync(RelayedTunnel tunnel, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tunnel);
        Offer(ToFlow(tunnel));
        return default;
    }

    /// <summary>Stops taking flows, writes what is queued, flushes the sink and waits for it.</summary>
    /// <param name="cancellationToken">Abandons the wait: queued flows not yet written are lost.</param>
    /// <returns>A task that completes when the queue is written.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        _queue.Writer.TryComplete();
        using var registration = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _stop);
        await _consumer.WaitAsync(cancellationToken);
    }

    /// <summary>Completes the recorder (<see cref="CompleteAsync"/>) and releases it.</summary>
    /// <returns>A task that completes when done.</returns>
    public async ValueTask DisposeAsync()
    {
        await CompleteAsync();
        _stop.Dispose();
    }

    /// <summary>This recorder's captures of <paramref name="exchange"/>: in the exchange's slot, or in the map when another
    /// recorder holds the slot; null when the request hook did not run.</summary>
    private Captures? Find(HttpExchange exchange) =>
        exchange.RecorderState is Captures own && ReferenceEquals(own.Owner, this) ? own
        : _open.TryGetValue(exchange, out var captures) ? captures
        : null;

    private void Offer(TunnelFlow flow) => Enqueue(flow, bodyBytes: 0, stripped: false);

    private void Offer(HttpFlow flow)
    {
        var bodyBytes = (long)flow.Request.Body.Content.Length + (flow.Response?.Body.Content.Length ?? 0) + WebSocketBytes(flow.WebSocket);
        var strip = bodyBytes > 0
            && (_queue.Reader.Count >= Math.Max(1, _options.QueueCapacity / 2)
                || Interlocked.Read(ref _queuedBodyBytes) + bodyBytes > _options.MaxQueuedBodyBytes);
        if (strip)
        {
            flow = flow with
            {
                Request = flow.Request with { Body = flow.Request.Body.WithoutContent() },
                Response = flow.Response is null ? null : flow.Response with { Body = flow.Response.Body.WithoutContent() },
                WebSocket = flow.WebSocket is null ? null : flow.WebSocket with
                {
                    Messages = [.. flow.WebSocket.Messages.Select(static m => m with { Content = ReadOnlyMemory<byte>.Empty })],
                },
            };
            bodyBytes = 0;
        }

        Enqueue(flow, bodyBytes, strip);
    }

    private void Enqueue(Flow flow, long bodyBytes, bool stripped)
    {
        Interlocked.Add(ref _queuedBodyBytes, bodyBytes);
        if (!_queue.Writer.TryWrite(new Queued(flow, bodyBytes)))
        {
            Interlocked.Add(ref _queuedBodyBytes, -bodyBytes);
            Interlocked.Increment(ref _droppedFlows);
            BurstStarted();
            return;
        }

        if (stripped)
        {
            Interlocked.Increment(ref _droppedBodies);
            BurstStarted();
        }
        else if (Interlocked.Exchange(ref _dropping, 0) == 1)
        {
            ProxyLog.FlowRecordingRecovered(_logger, DroppedBodies, DroppedFlows);
        }
    }

    private void BurstStarted()
    {
        if (Interlocked.Exchange(ref _dropping, 1) == 0)
        {
            ProxyLog.FlowRecordingDropping(_logger, _options.QueueCapacity);
        }
    }

    private async Task ConsumeAsync()
    {
        var reader = _queue.Reader;
        var unflushed = false;
        var lastFlush = _time.GetTimestamp();
        try
        {
            while (true)
            {
                while (reader.TryRead(out var queued))
                {
                    Interlocked.Add(ref _queuedBodyBytes, -queued.BodyBytes);
                    if (SinkFailure is not null)
                    {
                        Interlocked.Increment(ref _droppedFlows);
                        continue;
                    }

                    try
                    {
                        await _sink.WriteAsync(queued.Flow, _stop.Token);
                        _handed++;
                        Settle();
                        unflushed = true;
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        Interlocked.Increment(ref _droppedFlows);
                        Fail(ex);
                    }
                }

                // The queue is empty: flush once the interval has passed since the last flush, not after every flow.
                var sinceFlush = _time.GetElapsedTime(lastFlush);
                if (unflushed && sinceFlush >= _options.FlushInterval)
                {
                    await FlushAsync();
                    unflushed = false;
                    lastFlush = _time.GetTimestamp();
                }

                if (!await WaitForFlowsAsync(reader, unflushed ? lastFlush : null))
                {
                    // Completed and drained: what was written is flushed before CompleteAsync returns.
                    if (unflushed)
                    {
                        await FlushAsync();
                    }

                    return;
                }

                // Woken by the first flow after the queue ran empty: let a batch gather before draining it, so that under
                // steady load the consumer wakes once per GatherDelay instead of once per flow (a thread-pool dispatch
                // and a worker that spins for more work after each: about as much CPU as writing the flow).
                if (reader.Count is > 0 and < GatherBatch)
                {
                    await Task.Delay(GatherDelay, _stop.Token);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Abandoned by CompleteAsync's token: what is still queued is lost, as documented.
        }
    }

    /// <summary>Waits for a queued flow or the end of the queue (false), or, with <paramref name="lastFlush"/>, until
    /// the flush interval since it has passed (true, with nothing to read: time to flush).</summary>
    private async ValueTask<bool> WaitForFlowsAsync(ChannelReader<Queued> reader, long? lastFlush)
    {
        if (lastFlush is not { } since)
        {
            return await reader.WaitToReadAsync(_stop.Token);
        }

        var left = _options.FlushInterval - _time.GetElapsedTime(since);
        using var deadline = new CancellationTokenSource(left > TimeSpan.Zero ? left : TimeSpan.Zero, _time);

        // The clock may have moved between the computation above and the timer's start: checked again now that the
        // timer runs, so that a moment passed in between is never waited for a second time.
        if (_time.GetElapsedTime(since) >= _options.FlushInterval)
        {
            return true;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, deadline.Token);
        try
        {
            return await reader.WaitToReadAsync(linked.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !_stop.IsCancellationRequested)
        {
            return true;
        }
    }

    private async ValueTask FlushAsync()
    {
        if (SinkFailure is not null)
        {
            return;
        }

        try
        {
            await _sink.FlushAsync(_stop.Token);
            Settle();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Fail(ex);
        }
    }

    /// <summary>Counts what the sink kept so far (<see cref="Recorded"/>); the consumer's task, after a sink call.</summary>
    private void Settle() =>
        Interlocked.Exchange(ref _recorded, _sink.KeptFlows is { } kept ? kept - _keptBefore : _handed);

    private void Fail(Exception ex)
    {
        // The flows the sink took but had not kept went with the failure (a batch rolled back): dropped, not recorded.
        Settle();
        Interlocked.Add(ref _droppedFlows, Math.Max(0, _handed - Interlocked.Read(ref _recorded)));
        SinkFailure = ex;
        ProxyLog.FlowSinkFailed(_logger, _sink.GetType().Name, ex);
    }

    private HttpFlow ToFlow(HttpExchange exchange, Captures captures)
    {
        var request = exchange.Request;
        var timings = exchange.Timings;
        var clientFacts = ClientFacts.Of(exchange.Client);
        var serverFacts = exchange.Server is { } server ? ServerFacts.Of(server, _der) : null;
        var http2Origin = exchange.ServerVersion is { Major: >= 2 } serverVersion ? serverVersion : null;
        return new HttpFlow
        {
            Id = FlowId.New(captures.StartedAt),
            StartedAt = captures.StartedAt,
            Client = clientFacts.Endpoint,
            Server = serverFacts?.Endpoint,
            Error = exchange.Error is { } error ? new FlowError(PhaseName(error.Phase), error.Message, error.IsTransient) : null,
            Tags = Tags(exchange),
            Request = new FlowRequest
            {
                Method = request.Method,
                Scheme = request.Scheme,
                Host = request.Host,
                Port = request.Port,
                Path = request.Path,

                // As it went to the origin: the pipeline sets an HTTP/2 client's request to 1.1 before it knows the
                // origin's protocol (RFC 9113 §8.3.1 to RFC 9112 §3); an HTTP/2 origin got it as HTTP/2 all the same.
                HttpVersion = VersionText(http2Origin ?? request.Version),
                Headers = Copy(request.Headers)!,
                Body = Body(request, captures.Request),
                Trailers = Copy(request.Trailers ?? captures.Request?.Trailers),
            },
            Response = exchange.Response is not { } response ? null : new FlowResponse
            {
                StatusCode = response.StatusCode,
                Reason = response.ReasonPhrase,
                // An HTTP/2 origin's answer is translated into an HTTP/1.1 head for the pipeline; it came as HTTP/2.
                HttpVersion = VersionText(http2Origin ?? response.Version),
                Headers = Copy(response.Headers)!,
                Body = Body(response, captures.Response),
                Trailers = Copy(response.Trailers ?? captures.Response?.Trailers),
            },
            ClientHttpVersion = VersionText(exchange.ClientVersion),
            ServerHttpVersion = exchange.ServerVersion is { } v ? VersionText(v) : null,
            StreamId = exchange.StreamId,
            ClientConnectionId = clientFacts.Id,
            ServerConnectionId = serverFacts?.Id,
            IsSynthetic = exchange.IsSynthetic,

            Replay = ReplayKind(exchange),
            Timings = new FlowTimings(
                Offset(timings, timings.DnsDone),
                Offset(timings, timings.Connected),
                Offset(timings, timings.TlsDone),
                Offset(timings, timings.RequestSent),
                Offset(timings, timings.FirstByte),
                Offset(timings, timings.Done)),
            ClientTls = clientFacts.Tls,
            ServerTls = serverFacts?.Tls,
            WebSocket = captures.WebSocket is { } webSocket && exchange.Response is { StatusCode: 101 } ? webSocket.ToFlow() : null,
        };
    }

    /// <summary>RFC 6455 §4.1: a WebSocket opening handshake asks for "Upgrade: websocket".</summary>
    private static bool IsWebSocketRequest(HttpRequest request) =>
        request.Headers.Get("Upgrade") is { } upgrade && upgrade.Contains("websocket", StringComparison.OrdinalIgnoreCase);

    private static long WebSocketBytes(FlowWebSocket? webSocket)
    {
        long total = 0;
        if (webSocket is not null)
        {
            foreach (var message in webSocket.Messages)
            {
                total += message.Content.Length;
            }
        }

        return total;
    }

    private static TunnelFlow ToFlow(RelayedTunnel tunnel) => new()
    {
        Id = FlowId.New(tunnel.StartedAt),
        StartedAt = tunnel.StartedAt,
        Client = Endpoint(tunnel.Client.RemoteEndPoint),
        Server = Endpoint(tunnel.ServerEndPoint),
        // A relay that failed after connecting failed in neither request nor response: "relay" says where.
        Error = tunnel.Error is { } error
            ? new FlowError(error.Phase == ExchangePhase.Response ? "relay" : PhaseName(error.Phase), error.Message, error.IsTransient)
            : null,
        Kind = tunnel.Kind,
        Host = tunnel.Host,
        Port = tunnel.Port,
        Sni = tunnel.Sni,
        BytesFromClient = tunnel.BytesFromClient,
        BytesFromServer = tunnel.BytesFromServer,
        DurationMs = tunnel.Duration.TotalMilliseconds,
    };

    /// <summary>
    /// The body as it was sent: the one in hand when there is one (buffered for a hook, replaced by one, or none at
    /// all), else what the capture saw stream by.
    /// </summary>
    private FlowBody Body(HttpMessage message, BodyCapture? capture)
    {
        if (message.HasBody)
        {
            var whole = FlowBody.FromBytes(message.Body);
            return _options.MaxBodyBytes is { } max && whole.Content.Length > max ? whole with { Content = whole.Content[..max] } : whole;
        }

        return capture?.ToBody() ?? new FlowBody(ReadOnlyMemory<byte>.Empty, 0, sha256: null);
    }

    private static double? Offset(ExchangeTimings timings, long at) =>
        at == 0 ? null : timings.Elapsed(timings.RequestStarted, at).TotalMilliseconds;

    private static FlowEndpoint? Endpoint(EndPoint? endPoint) => endPoint switch
    {
        IPEndPoint ip => new FlowEndpoint((ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString(), ip.Port),
        DnsEndPoint dns => new FlowEndpoint(dns.Host, dns.Port),
        _ => null,
    };


    private static string VersionText(Version version) => version switch
    {
        // The versions every exchange has, as constants rather than a new string per flow.
        { Major: 1, Minor: 1 } => "HTTP/1.1",
        { Major: 2, Minor: 0 } => "HTTP/2.0",
        { Major: 1, Minor: 0 } => "HTTP/1.0",
        _ => "HTTP/" + version.ToString(2),
    };

    private static string PhaseName(ExchangePhase phase) => phase switch
    {
        ExchangePhase.ClientRequest => "client_request",
        ExchangePhase.ClientResponse => "client_response",
        _ => phase.ToString().ToLowerInvariant(),
    };

    /// <summary>mitmproxy's <c>is_replay</c> of an exchange, from the tag the replaying addon set: "response"
    /// (<c>~replays</c>) when the answer came from a recording, "request" (<c>~replayq</c>) when the request was sent
    /// again. The recorded flow and the live filter view (rules, scripts) both read it here.</summary>
    internal static Core.Filters.FilterReplayKind ReplayKind(HttpExchange exchange) =>
        exchange.TagsIfAny is not { } tags ? Core.Filters.FilterReplayKind.None
        : tags.ContainsKey(Rules.ServerReplayAddon.Tag) ? Core.Filters.FilterReplayKind.Response
        : tags.ContainsKey(FlowReplayer.Tag) ? Core.Filters.FilterReplayKind.Request
        : Core.Filters.FilterReplayKind.None;

    private static IReadOnlyDictionary<string, string> Tags(HttpExchange exchange)
    {
        if (exchange.TagsIfAny is not { } tags)
        {
            return NoTags;
        }

        var copy = new Dictionary<string, string>(tags.Count, StringComparer.Ordinal);
        foreach (var (name, value) in tags)
        {
            copy[name] = value switch
            {
                null => "",
                IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
                _ => value.ToString() ?? "",
            };
        }

        return copy;
    }

    /// <summary>The flow's own copy of a head's fields: the exchange's may still change (a later hook, a retry).</summary>
    private static HttpHeaders? Copy(HttpHeaders? headers) => headers?.Clone();

    /// <summary>The tags of an exchange without any (most): one shared empty map, not one per flow. Flows are values
    /// (<see cref="Flow"/>), so nothing adds to it.</summary>
    private static readonly IReadOnlyDictionary<string, string> NoTags = new Dictionary<string, string>(StringComparer.Ordinal);

    private readonly record struct Queued(Flow Flow, long BodyBytes);

    /// <summary>What the recorder keeps for an exchange between its hooks.</summary>
    private sealed class Captures(FlowRecorder owner, DateTimeOffset startedAt, BodyCapture? request) : IDisposable
    {
        public FlowRecorder Owner { get; } = owner;

        public DateTimeOffset StartedAt { get; } = startedAt;

        public BodyCapture? Request { get; } = request;

        public BodyCapture? Response { get; set; }

        public WebSocketRecording? WebSocket { get; set; }

        public void Dispose()
        {
            Request?.Dispose();
            Response?.Dispose();
        }
    }

    /// <summary>
    /// What every flow of one client connection shares (its address, id and TLS session), made once per connection and
    /// kept on it (<see cref="ClientConnection.RecorderFacts"/>): formatting the address and id and naming the TLS
    /// version and cipher for every exchange cost more than the rest of the flow's heads. Flows are values, so they
    /// share these. Made again when the connection's TLS state is no longer the one they were made from.
    /// </summary>
    private sealed class ClientFacts
    {
        private readonly System.Security.Authentication.SslProtocols? _version;
        private readonly System.Net.Security.TlsCipherSuite? _cipher;
        private readonly string? _alpn;
        private readonly string? _sni;

        private ClientFacts(ClientConnection client)
        {
            _version = client.TlsVersion;
            _cipher = client.CipherSuite;
            _alpn = client.Alpn;
            _sni = client.Sni;
            Endpoint = FlowRecorder.Endpoint(client.RemoteEndPoint);
            Id = client.Id.ToString(CultureInfo.InvariantCulture);
            Tls = _version is { } version ? new FlowTls(version.ToString(), _cipher?.ToString(), _alpn, _sni) : null;
        }

        public FlowEndpoint? Endpoint { get; }

        public string Id { get; }

        public FlowTls? Tls { get; }

        public static ClientFacts Of(ClientConnection client)
        {
            if (client.RecorderFacts is ClientFacts facts && facts._version == client.TlsVersion && facts._cipher == client.CipherSuite
                && ReferenceEquals(facts._alpn, client.Alpn) && ReferenceEquals(facts._sni, client.Sni))
            {
                return facts;
            }

            facts = new ClientFacts(client);
            client.RecorderFacts = facts;
            return facts;
        }
    }

    /// <summary>The same as <see cref="ClientFacts"/> for an origin connection (<see cref="ServerConnection.RecorderFacts"/>),
    /// with the origin's certificate.</summary>
    private sealed class ServerFacts
    {
        private readonly EndPoint? _remote;
        private readonly System.Security.Authentication.SslProtocols? _version;
        private readonly System.Net.Security.TlsCipherSuite? _cipher;
        private readonly string? _alpn;
        private readonly X509Certificate2? _certificate;

        private ServerFacts(ServerConnection server, ConditionalWeakTable<X509Certificate2, byte[]> der)
        {
            _remote = server.RemoteEndPoint;
            _version = server.TlsVersion;
            _cipher = server.CipherSuite;
            _alpn = server.Alpn;
            _certificate = server.Certificate;
            Endpoint = FlowRecorder.Endpoint(_remote) ?? new FlowEndpoint(server.Host, server.Port);
            Id = server.Id.ToString(CultureInfo.InvariantCulture);
            Tls = !server.IsTls ? null : new FlowTls(_version?.ToString(), _cipher?.ToString(), _alpn, server.Sni)
            {
                // RawData makes a fresh copy at every call: one array per certificate object, which also lets the store
                // hash it once (docs/performance.md, "Recording").
                CertificateChain = _certificate is { } leaf ? [der.GetValue(leaf, static c => c.RawData)] : [],
            };
        }

        public FlowEndpoint Endpoint { get; }

        public string Id { get; }

        public FlowTls? Tls { get; }

        public static ServerFacts Of(ServerConnection server, ConditionalWeakTable<X509Certificate2, byte[]> der)
        {
            if (server.RecorderFacts is ServerFacts facts && ReferenceEquals(facts._remote, server.RemoteEndPoint)
                && facts._version == server.TlsVersion && facts._cipher == server.CipherSuite
                && ReferenceEquals(facts._alpn, server.Alpn) && ReferenceEquals(facts._certificate, server.Certificate))
            {
                return facts;
            }

            facts = new ServerFacts(server, der);
            server.RecorderFacts = facts;
            return facts;
        }
    }
}
