using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>
/// One exchange, from a request head to the end of its response, with no socket of its own: the client's side is an
/// <see cref="IClientSide"/> (the protocol server connection), the origin's an <see cref="UpstreamConnection"/> from
/// the pool or the connector. Holds the exchange's state; HTTP/1.1 reuses one per client connection, as it runs one
/// exchange at a time.
/// </summary>
/// <remarks>
/// <code>
///  1 head from the server connection ─► 2 RequestHeaders hook ─► 3 [buffer body] ─► 4 Request hook
///    ─► (killed: close) (synthetic: drain, Response hook, answer)
///    ─► 5 spec wrapper ─► 6 pool / eager / connect ─► 7 request head (+ body concurrently) out
///    ─► 8 response head (1xx relayed) ─► ResponseHeaders hook ─► [buffer body] ─► Response hook
///    ─► spec wrapper ─► response to the client ─► 9 origin connection back to the pool
///  any failure ─► Failures: phase, transient or not ─► Error hook ─► 4xx/5xx with a reason if nothing was sent yet
/// </code>
/// </remarks>
internal sealed class ExchangePipeline : IDisposable
{
    /// <summary>A reframed request body's chunk heads: ArrayBufferWriter's default first size, which this replaced.</summary>
    private const int RequestFramingScratchBytes = 256;

    private readonly ClientFlow _flow;
    private readonly ProxyRuntime _rt;
    private readonly IClientSide _client;

    // Where request heads are serialized: lent by the client side, which writes its response heads into the same
    // writer (a request head is out before any response head is written), so a connection holds one, not one per layer.
    private readonly ScratchBuffer _scratch;

    // Re-armed for each response-head wait: a new scope per wait was a linked CancellationTokenSource and a timer.
    // HTTP/1.1 lends its connection's one timer (ClientFlow.Deadline); an HTTP/2 stream's pipeline makes its own.
    private readonly bool _ownsResponseHeadTimeout;
    private TimeoutScope? _responseHeadTimeout;

    // The deadline of every hook call of an exchange (ProxyTimeouts.AddonHook), borrowed at its first hook and given
    // back when it ends: hooks run one at a time here, and an idle connection holds none.
    private TimeoutScope? _hookScope;

    /// <param name="flow">The client connection.</param>
    /// <param name="client">The protocol side the exchanges arrive on.</param>
    /// <param name="scratch">The writer request heads are serialized into; not used by anything else while one is written.</param>
    /// <param name="responseHeadTimeout">
    /// A scope to arm for the response-head waits, idle at those times and owned by the caller; null: the pipeline makes
    /// (and disposes) its own.
    /// </param>
    public ExchangePipeline(ClientFlow flow, IClientSide client, ScratchBuffer scratch, TimeoutScope? responseHeadTimeout = null)
    {
        _flow = flow;
        _rt = flow.Runtime;
        _client = client;
        _scratch = scratch;
        _responseHeadTimeout = responseHeadTimeout;
        _ownsResponseHeadTimeout = responseHeadTimeout is null;
    }

    /// <summary>
    /// Where the exchange is, for the error it may end with; the client side moves it on while it relays a body.
    /// </summary>
    /// <remarks>
    /// Kept by the client side of the exchange: per connection for HTTP/1.1 (one exchange at a time, and the session's
    /// log line names the step the connection ended in), per stream for HTTP/2, whose exchanges run concurrently.
    /// </remarks>
    private TimeoutScope HookScope => _hookScope ??= _rt.HookDeadlines.Rent();

    private ExchangePhase Phase
    {
        get => _client.Phase;
        set => _client.Phase = value;
    }

    /// <summary>Runs one exchange whose head was read and resolved; returns whether the client connection may carry another.</summary>
    /// <param name="exchange">The exchange, its request resolved to an origin.</param>
    /// <param name="request">How the request arrived: its framing, version and persistence, the tunnel it came through.</param>
    /// <param name="cancellationToken">
    /// The exchange's token: the proxy's abort for HTTP/1.1, the stream's for HTTP/2 (linked to the connection's and the
    /// proxy's), so that a client's RST_STREAM stops the hooks and the origin waits of that exchange at once.
    /// </param>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> RunAsync(HttpExchange exchange, ReceivedRequest request, CancellationToken cancellationToken)
    {
        var keepAlive = request.KeepAlive;
        var requestBodyPending = request.BodyPending;
        var message = exchange.Request;
        if (!requestBodyPending)
        {
            message.SetBufferedBody(ReadOnlyMemory<byte>.Empty);
        }

        long responseBytes = 0;
        var ct = cancellationToken;

        // 1. The addons are read once: a list replaced meanwhile (a reloaded script) applies from the next exchange.
        exchange.Addons = _rt.Addons;
        var serverSpan = ExchangeTracing.StartServer(_rt, exchange);
        Activity? clientSpan = null;
        try
        {
            // 2. Hooks see the head before any body byte is read.
            Phase = ExchangePhase.Addon;
            if (!exchange.Addons.IsEmpty)
            {
                await exchange.Addons.RunAsync("RequestHeadersAsync", exchange, static (a, e, c) => a.RequestHeadersAsync(e, c), ct, HookScope);
            }

            // 3. The whole body, if a hook asked for it.
            if (message.BufferBody && requestBodyPending && !exchange.IsKilled && !exchange.IsSynthetic)
            {
                Phase = ExchangePhase.ClientRequest;
                if (message.Headers.Remove("Expect") > 0 && ExpectsContinue(request))
                {
                    // The proxy itself wants the body before forwarding, so it answers the expectation
                    // (RFC 9110 §10.1.1) instead of the origin, and does not forward it.
                    await _client.SendContinueAsync(ct);
                }

                // Measured as a streamed body is: buffering for a hook must not let a client trickle indefinitely.
                var sink = new BufferingSink(_rt.Options.MaxBufferedBodyBytes);
                await _client.ReadRequestBodyAsync(request.Framing, sink, raw: false, destination: null, message, ct);
                requestBodyPending = false;
                message.SetBufferedBody(sink.Body);
                message.Trailers = sink.Trailers;
            }

            // 4. The request hook: last chance to change, answer or kill before the origin is contacted.
            Phase = ExchangePhase.Addon;
            if (!exchange.Addons.IsEmpty && !exchange.IsKilled && !exchange.IsSynthetic)
            {
                await exchange.Addons.RunAsync("RequestAsync", exchange, static (a, e, c) => a.RequestAsync(e, c), ct, HookScope);
            }

            if (exchange.IsKilled)
            {
                return false;
            }

            if (exchange.IsSynthetic)
            {
                if (requestBodyPending && message.Headers.Contains("Expect") && ExpectsContinue(request))
                {
                    // RFC 9110 §10.1.1: the client waits for a 100 (Continue) before it sends the content, and an answer
                    // the proxy makes itself brings none: waiting to drain that content would wait for ever. The final
                    // response goes at once, and the connection is not reused (the content may still come, and would
                    // be read as the next request): "A server that responds with a final status code before reading the
                    // entire request content SHOULD indicate whether it intends to close the connection".
                    keepAlive = false;
                }
                else if (requestBodyPending)
                {
                    Phase = ExchangePhase.ClientRequest;
                    keepAlive &= await _client.DrainRequestBodyAsync(request.Framing, message, ct);
                    Phase = ExchangePhase.Addon;
                }

                if (!exchange.Addons.IsEmpty)
                {
                    await exchange.Addons.RunAsync("ResponseAsync", exchange, static (a, e, c) => a.ResponseAsync(e, c), ct, HookScope);
                }

                if (exchange.IsKilled)
                {
                    return false;
                }

                CheckSendable(exchange.Response!);
                Phase = ExchangePhase.ClientResponse;
                responseBytes = await _client.SendWholeResponseAsync(exchange.Response!, message, keepAlive, ct);
                return keepAlive;
            }

            // 5-9. Forward to the origin and relay the response.
            clientSpan = ExchangeTracing.StartClient(serverSpan, exchange);
            (keepAlive, responseBytes) = await ForwardAsync(new Forwarding(exchange, request, requestBodyPending, keepAlive), ct);
            return keepAlive;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !_rt.Aborted.IsCancellationRequested)
        {
            // The step that failed closed its origin connection: what is left is telling the client.
            await FailAsync(exchange, ex, ct);
            return false;
        }
        finally
        {
            exchange.Timings.Done = _rt.Time.GetTimestamp();
            _rt.Metrics.ExchangeDone(exchange, exchange.Timings.Total);
            _rt.Metrics.BytesUpstream(message.HasBody ? message.Body.Length : 0);
            _rt.Metrics.BytesDownstream(responseBytes);
            ExchangeTracing.StopClient(clientSpan, exchange);
            ExchangeTracing.StopServer(serverSpan, exchange);
            if (!exchange.Addons.IsEmpty)
            {
                await exchange.Addons.NotifyAsync("DoneAsync", exchange, static (a, e, c) => a.DoneAsync(e, c), _rt.Logger, CancellationToken.None, HookScope);
            }

            FlowLog.Log(_rt.FlowLogger, exchange, responseBytes);

            // An HTTP/1.1 connection may now wait idle for hours: its hook deadline goes back to the shared pool.
            ReturnHookScope();
        }
    }

    /// <summary>
    /// Whether a client that sent Expect waits for a 100 (Continue). RFC 9110 §10.1.1: "A server that receives a
    /// 100-continue expectation in an HTTP/1.0 request MUST ignore that expectation", and §15.2: "A server MUST NOT send
    /// a 1xx response to an HTTP/1.0 client".
    /// </summary>
    private static bool ExpectsContinue(ReceivedRequest request) => request.ClientVersion != HttpVersion.Version10;

    /// <summary>The error path: one place maps each phase's failure to what the client is told (YARP's HandleRequestFailure).</summary>
    private async ValueTask FailAsync(HttpExchange exchange, Exception ex, CancellationToken ct)
    {
        var request = exchange.Request;
        if (ex is OperationCanceledException && ct.IsCancellationRequested)
        {
            // The client cancelled this exchange (an HTTP/2 stream reset): not an origin failure, nobody to answer.
            exchange.Error = new ExchangeError(Phase, "cancelled by the client", IsTransient: false, ex);
            ProxyLog.ExchangeCancelled(_rt.Logger, _client.Info, exchange.StreamId, request.Host, request.Port, Phase);
            await exchange.Addons.NotifyAsync("ErrorAsync", exchange, static (a, e, c) => a.ErrorAsync(e, c), _rt.Logger, CancellationToken.None, _hookScope);
            return;
        }

        var error = ex switch
        {
            UpstreamUnavailableException unavailable => unavailable.Error,
            ExchangeTimeoutException timeout => Failures.Describe(timeout.Phase, timeout.InnerException!, timedOut: true),
            _ => Failures.Describe(Phase, ex),
        };
        exchange.Error = error;
        _rt.Metrics.Error(error);
        var clientGone = error.Exception is ClientConnectionFailedException;
        if (clientGone)
        {
            // The client's own connection failed: an ordinary end of a client (at Debug, as its other ends), not the
            // origin failing.
            ProxyLog.ClientConnectionEnded(_rt.Logger, _client.Info, error.Phase, error.Message);
        }
        else
        {
            ProxyLog.UpstreamFailed(_rt.Logger, _client.Info, request.Host, request.Port, error.Phase, error.IsTransient ? "transient" : "permanent", error.Message);
        }

        if (ex is AddonException { TimedOut: true } late)
        {
            ProxyLog.AddonTimedOut(_rt.Logger, late.Addon, late.Hook, _rt.HookDeadlines.Timeout.TotalSeconds, exchange.Id);
        }
        else if (ex is AddonException addon)
        {
            ProxyLog.AddonFailed(_rt.Logger, addon.Addon, addon.Hook, exchange.Id, addon.InnerException!);
        }
        else if (Failures.IsInternal(ex))
        {
            // The line above gave only the message, as for a network failure; this one keeps the stack.
            ProxyLog.ExchangeFailedInternally(_rt.Logger, exchange.Id, request.Host, request.Port, error.Phase, ex);
        }

        await exchange.Addons.NotifyAsync("ErrorAsync", exchange, static (a, e, c) => a.ErrorAsync(e, c), _rt.Logger, ct, _hookScope);
        if (!_client.ResponseStarted && error.Phase != ExchangePhase.ClientResponse && !clientGone)
        {
            var status = ex is HttpProtocolException protocol && error.Phase == ExchangePhase.ClientRequest
                ? protocol.StatusCode
                : Failures.StatusFor(error);
            await _client.SendErrorAsync(status, Failures.DescribeForClient(request, error));
        }
    }

    /// <summary>Steps 5 to 9: origin connection, request out, response back.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(bool KeepAlive, long ResponseBytes)> ForwardAsync(Forwarding forward, CancellationToken ct)
    {
        var exchange = forward.Exchange;
        var request = exchange.Request;
        var received = forward.Received;
        var tunnel = received.Tunnel;

        var sni = request.Scheme != "https" ? null
            : tunnel is not null && tunnel.Host == request.Host ? tunnel.Sni
            : IPAddress.TryParse(request.Host, out _) ? null : request.Host;
        var key = new UpstreamKey(request.Scheme, request.Host, request.Port, sni, UpstreamProtocolFor(request.Scheme, received, _rt.Options));

        // 5. The spec wrapper around the hooks: hop-by-hop fields out, framing fixed for what will really be sent.
        var bodyPending = forward.BodyPending;
        var transformed = bodyPending && request.Transform is not null;
        long? bodyInHand = request.HasBody && (request.BodyReplaced || received.Framing.Kind != BodyKind.None) ? request.Body.Length : null;
        var relay = ForwardingRules.PrepareRequest(request.Headers, received.Upgrade, received.Framing, bodyPending, transformed, bodyInHand);
        if (request.Version.Major >= 2)
        {
            // An HTTP/2 client's request: the origin connection speaks HTTP/1.1 (RFC 9113 §8.3.1 to RFC 9112 §3).
            request.Version = HttpVersion.Version11;
        }

        if (relay == RequestBodyRelay.Rechunked)
        {
            // Chunked is an HTTP/1.1 feature (RFC 9112 §7).
            request.Version = HttpVersion.Version11;
        }

        if (_rt.Options.AddVia)
        {
            request.Headers.Add("Via", ForwardingRules.Via(request.Version));
        }

        // 6. An origin connection: reused if one is idle, else new. A reused one may have been closed by the origin
        //    just now (its keep-alive ended while idle). What may be sent again:
        //    - any method, when the origin proved it did not process the request (RFC 9113 §8.7: REFUSED_STREAM, a
        //      stream above GOAWAY's last id, a stream never opened on a connection going away);
        //    - an idempotent method (RFC 9110 §9.2.2), when a reused connection failed before any response byte;
        //    - nothing else: "A proxy MUST NOT automatically retry non-idempotent requests" (RFC 9110 §9.2.2), the
        //      client gets a 502 saying so. Only a body in hand can be sent twice: a streamed one never is.
        UpstreamConnection? upstream = null;
        HttpResponseHead responseHead;
        Task<Exception?>? bodyTask = null;
        // Only a streamed request body runs beside the exchange and needs its own cancellation; the others use the
        // proxy's token as is (a linked source per exchange was 190 B of the per-exchange allocations).
        using var exchangeCts = bodyPending ? CancellationTokenSource.CreateLinkedTokenSource(ct) : null;
        var exchangeToken = exchangeCts?.Token ?? ct;
        for (var attempt = 0; ; attempt++)
        {
            Phase = ExchangePhase.Connect;
            upstream = await AcquireAsync(key, exchange, ct);
            exchange.Server = upstream.Info;
            var stale = upstream.IsReused && attempt == 0 && !bodyPending;
            try
            {
                // 7. Request head (and a buffered body) out; a streamed body goes concurrently, so that an origin
                //    answering early (100-continue, 413) is heard.
                Phase = ExchangePhase.Request;
                await upstream.WriteRequestAsync(request, _scratch, bodyPending, ct);
                if (bodyPending)
                {
                    bodyTask = SendRequestBodyAsync(received.Framing, request, upstream, relay == RequestBodyRelay.RawChunked, exchange.Timings, exchangeCts!);
                }
                else
                {
                    exchange.Timings.RequestSent = _rt.Time.GetTimestamp();
                }

                // 8. Response head; 1xx interim responses are relayed (RFC 9110 §15.2), never invented.
                Phase = ExchangePhase.Response;
                responseHead = await ReadResponseHeadAsync(upstream, exchange, received.ClientVersion, exchangeToken);
                break;
            }
            catch (Http2RefusedException refused) when (!bodyPending && attempt < MaxRefusedRetries)
            {
                // RFC 9113 §8.7: REFUSED_STREAM, or a stream above a GOAWAY's last id, "can be retried" whatever the
                // method, since the origin did not process it; only a body already streamed away could not be replayed.
                ProxyLog.Http2UpstreamRetry(_rt.Logger, key.Host, key.Port, exchange.Id, refused.Message);
                _rt.Metrics.UpstreamRetry(notProcessed: true);
                await upstream.DisposeAsync();
                upstream = null;
            }
            catch (Exception ex) when (stale && exchange.Timings.FirstByte == 0 && ex is IOException or SocketException)
            {
                // RFC 9112 §9.3.1, RFC 9110 §9.2.2: the reused connection failed (closed, reset) before any response
                // byte; the origin may or may not have processed the request.
                await upstream.DisposeAsync();
                upstream = null;
                if (!ForwardingRules.IsIdempotent(request.Method))
                {
                    throw new RequestNotRetriedException(request.Method, ex);
                }

                ProxyLog.IdempotentRetry(_rt.Logger, key.Host, key.Port, exchange.Id, request.Method, ex.Message);
                _rt.Metrics.UpstreamRetry(notProcessed: false);
            }
            catch (Exception ex)
            {
                await upstream.DisposeAsync();
                if (bodyTask is not null)
                {
                    // A malformed streamed body (RFC 9112 §7.1), one sent below the minimum rate, one the client cut
                    // short or one whose connection failed (a reset) cancels the wait for the response: the client's
                    // fault is the failure to report (400, 408, or nothing to a client that is gone), not the cancelled
                    // wait (which would read as a 504) nor the origin.
                    await exchangeCts!.CancelAsync();
                    var bodyError = await bodyTask;
                    if (bodyError is HttpProtocolException or MinDataRateException or ClientBodyEndedException or ClientConnectionFailedException)
                    {
                        Phase = ExchangePhase.ClientRequest;
                        ExceptionDispatchInfo.Throw(bodyError);
                    }

                    // Why the exchange ended is the body's failure, not the wait it cancelled: trailers the origin would
                    // refuse, or a send that failed (the origin reset the stream or closed its connection, a transform
                    // failed) before the wait saw a failure of its own, a 502 with its reason rather than a cancelled
                    // wait's 504.
                    if ((bodyError is TrailerListTooLargeException && ex is not TrailerListTooLargeException)
                        || (bodyError is IOException && ex is OperationCanceledException && !ct.IsCancellationRequested)
                        || bodyError is RequestBodyFailedException)
                    {
                        Phase = ExchangePhase.Request;
                        ExceptionDispatchInfo.Throw(bodyError);
                    }
                }

                if (ex is TrailerListTooLargeException)
                {
                    // Seen by the response wait (the stream failed with it): it happened while the request was sent.
                    Phase = ExchangePhase.Request;
                }

                throw;
            }
        }

        try
        {
            return await RelayResponseAsync(forward, upstream, responseHead, bodyTask, exchangeCts, exchangeToken);
        }
        catch (Exception ex)
        {
            if (exchangeCts is not null)
            {
                await exchangeCts.CancelAsync();
            }

            await upstream.DisposeAsync();

            // The response was under way when the request body, still streaming, fell below the minimum rate or lost
            // the client's connection: that, not the cancelled relay, is why the exchange ended.
            if (ex is OperationCanceledException && bodyTask is not null && await bodyTask is (MinDataRateException or ClientConnectionFailedException) and var bodyError)
            {
                ExceptionDispatchInfo.Throw(bodyError);
            }

            throw;
        }
    }

    /// <summary>Tries of a request the HTTP/2 origin did not process before it fails: SocketsHttpHandler's 3
    /// (MaxConnectionFailureRetries), so an origin that refuses every stream cannot make the proxy loop.</summary>
    private const int MaxRefusedRetries = 3;

    /// <summary>
    /// What to offer the origin (docs/architecture.md, "HTTP/2 upstream"): over TLS, h2 and http/1.1 when the client
    /// speaks HTTP/2, http/1.1 only when it speaks HTTP/1.1, so each side keeps the protocol it would have had without
    /// the proxy; on plain HTTP, h2c only when the user says the origins speak it (prior knowledge). An upgrade request
    /// stays on HTTP/1.1 (RFC 9113 §8.6: no 101 in HTTP/2).
    /// </summary>
    private static UpstreamProtocol UpstreamProtocolFor(string scheme, ReceivedRequest received, ProxyOptions options)
    {
        if (received.Upgrade || !options.UpstreamHttp2)
        {
            return UpstreamProtocol.Http11;
        }

        return scheme switch
        {
            "https" when received.ClientVersion.Major >= 2 => UpstreamProtocol.Http2OrHttp11,
            "http" when options.UpstreamHttp2PriorKnowledge => UpstreamProtocol.Http2PriorKnowledge,
            _ => UpstreamProtocol.Http11,
        };
    }

    /// <summary>
    /// Step 6: an origin connection for one exchange: the eager one, a stream on a pooled HTTP/2 connection, an idle
    /// HTTP/1.1 one, or a new one, which becomes HTTP/2 (and pooled, its other slots for the next exchanges) when the
    /// origin picked h2 in ALPN or prior knowledge applies.
    /// </summary>
    /// <exception cref="UpstreamUnavailableException">No connection could be opened; the error says in which phase.</exception>
    private async ValueTask<UpstreamConnection> AcquireAsync(UpstreamKey key, HttpExchange exchange, CancellationToken ct)
    {
        if (await TakeEagerAsync(key, exchange) is { } eager)
        {
            return await AsHttp2IfNegotiatedAsync(eager, ct);
        }

        if (key.Protocol == UpstreamProtocol.Http11 || _rt.Pool.SpeaksHttp11(key))
        {
            return await _rt.Pool.TryRentAsync(key) ?? await ConnectAsync(key, exchange, ct);
        }

        if (_rt.Pool.TryOpenHttp2Stream(key) is { } pooled)
        {
            return new UpstreamConnection(pooled, _rt);
        }

        // One connect at a time per origin: the streams of a burst share the first connection (up to its limit).
        using (await _rt.Pool.EnterHttp2ConnectAsync(key, ct))
        {
            if (_rt.Pool.TryOpenHttp2Stream(key) is { } opened)
            {
                return new UpstreamConnection(opened, _rt);
            }

            if (await _rt.Pool.TryRentAsync(key) is { } idle)
            {
                return idle;
            }

            return await AsHttp2IfNegotiatedAsync(await ConnectAsync(key, exchange, ct), ct);
        }
    }

    private async ValueTask<UpstreamConnection> ConnectAsync(UpstreamKey key, HttpExchange exchange, CancellationToken ct)
    {
        var connect = await _rt.Connector.ConnectAsync(key, exchange, ct);
        if (connect.Error is not null)
        {
            throw new UpstreamUnavailableException(connect.Error);
        }

        return connect.Connection!;
    }

    /// <summary>A new connection that negotiated h2 (or is h2c by prior knowledge) starts HTTP/2 and joins the pool.</summary>
    private async ValueTask<UpstreamConnection> AsHttp2IfNegotiatedAsync(UpstreamConnection connection, CancellationToken ct)
    {
        var key = connection.Key;
        var http2 = key.Protocol == UpstreamProtocol.Http2PriorKnowledge || (key.Protocol == UpstreamProtocol.Http2OrHttp11 && connection.Info.Alpn == "h2");
        if (!http2)
        {
            if (key.Protocol == UpstreamProtocol.Http2OrHttp11)
            {
                _rt.Pool.MarkHttp11(key);
            }

            return connection;
        }

        var (h2, error) = await Http2UpstreamConnection.StartAsync(connection, _rt, ct);
        if (h2 is null)
        {
            throw new UpstreamUnavailableException(error!);
        }

        var stream = h2.TryOpenStream();
        if (stream is null || !_rt.Pool.AddHttp2(h2))
        {
            // RFC 9113 §6.5.2 allows SETTINGS_MAX_CONCURRENT_STREAMS 0; a new connection that takes no stream is a
            // failure, not a reason to open another (SocketsHttpHandler does the same).
            await h2.DisposeAsync();
            throw new UpstreamUnavailableException(new ExchangeError(ExchangePhase.Connect, $"the HTTP/2 origin {key.Host}:{key.Port} allows no stream", IsTransient: true, null));
        }

        return new UpstreamConnection(stream, _rt);
    }

    /// <summary>The connection opened ahead for this tunnel, when the request goes where it was opened to.</summary>
    /// <exception cref="UpstreamUnavailableException">Opening it failed; the error says in which phase.</exception>
    private async ValueTask<UpstreamConnection?> TakeEagerAsync(UpstreamKey key, HttpExchange exchange)
    {
        // HTTP/2 streams of one connection run concurrently: exactly one of them may take it.
        if (_flow.TakeEager(key) is not { } eager)
        {
            return null;
        }

        await using (eager)
        {
            var connect = await eager.TakeAsync();
            if (connect.Error is not null)
            {
                exchange.Server = connect.Server;
                throw new UpstreamUnavailableException(connect.Error);
            }

            return connect.Connection;
        }
    }

    /// <summary>Reads the final response head, relaying 1xx interim responses to the client as they come.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<HttpResponseHead> ReadResponseHeadAsync(UpstreamConnection upstream, HttpExchange exchange, Version clientVersion, CancellationToken ct)
    {
        var scope = _responseHeadTimeout ??= new TimeoutScope(_rt.Time);
        scope.Arm(_rt.Options.Timeouts.ResponseHead, ct);
        try
        {
            while (true)
            {
                var head = await upstream.ReadResponseHeadAsync(exchange.Timings, scope.Token);
                if (!ForwardingRules.IsInterim(head.StatusCode))
                {
                    return head;
                }

                if (ForwardingRules.ForwardInterim(head.StatusCode, clientVersion))
                {
                    await _client.SendInterimAsync(head, ct);
                }
            }
        }
        catch (OperationCanceledException ex) when (scope.TimedOut)
        {
            throw new ExchangeTimeoutException(ExchangePhase.Response, ex);
        }
        finally
        {
            scope.Disarm();
        }
    }

    /// <summary>Steps 8 to 9: hooks on the response, spec wrapper, response to the client, connection reuse.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(bool KeepAlive, long ResponseBytes)> RelayResponseAsync(
        Forwarding forward, UpstreamConnection upstream, HttpResponseHead responseHead, Task<Exception?>? bodyTask, CancellationTokenSource? exchangeCts, CancellationToken ct)
    {
        var exchange = forward.Exchange;
        var keepAlive = forward.KeepAlive;
        var request = exchange.Request;
        // An HTTP/2 origin's body comes framed for HTTP/1.1 by its stream (Content-Length or chunked, trailers in the
        // chunked trailer section or, after a Content-Length body, beside it for the relay), so every client side
        // relays it as it relays an HTTP/1.1 origin's.
        var http2 = upstream.Http2;
        var responseFraming = http2?.ResponseFraming ?? MessageFraming.ForResponse(responseHead, request.Method);
        var upstreamReusable = http2 is not null || (HopByHop.KeepAlive(responseHead.Version, responseHead.Headers) && responseFraming.Kind != BodyKind.CloseDelimited);
        var response = new HttpResponse(responseHead.StatusCode, responseHead.ReasonPhrase, responseHead.Version, responseHead.Headers);
        exchange.Response = response;
        exchange.ServerVersion = http2 is not null ? HttpVersion.Version20 : responseHead.Version;
        var responseBodyPending = responseFraming.Kind != BodyKind.None;
        if (!responseBodyPending)
        {
            response.SetBufferedBody(ReadOnlyMemory<byte>.Empty);
        }

        // An accepted upgrade (WebSocket): relay the 101, then bytes both ways until both sides close.
        if (responseHead.StatusCode == 101)
        {
            // RFC 9110 §7.8: "A server MUST NOT switch to a protocol that was not indicated by the client in the
            // corresponding request's Upgrade header field." The proxy forwards Upgrade only for a client that sent it,
            // so a 101 to any other request is the origin's invention; relayed, it would hand that origin the client's
            // connection: every later request on it, whatever host it names, sent raw to that origin, unseen by hooks.
            if (!forward.Received.Upgrade)
            {
                throw new HttpProtocolException("101 Switching Protocols to a request that asked for no upgrade (RFC 9110 §7.8)");
            }

            if (bodyTask is not null && await bodyTask is { } bodyError)
            {
                // The request's content is sent in HTTP/1.1 before the switch: the relay reads the client only after it.
                ExceptionDispatchInfo.Throw(bodyError);
            }

            Phase = ExchangePhase.ClientResponse;
            using var tap = WebSocketTap.For(exchange, responseHead, _rt.Time, _rt.Logger);
            var (up, down) = await _client.RelayUpgradeAsync(responseHead, upstream, tap, ct);
            ProxyLog.TunnelClosed(_rt.Logger, _client.Info, "upgraded", request.Host, request.Port, up, down);
            _rt.Metrics.BytesUpstream(up);
            await upstream.DisposeAsync();
            return (false, down);
        }

        Phase = ExchangePhase.Addon;
        if (!exchange.Addons.IsEmpty)
        {
            await exchange.Addons.RunAsync("ResponseHeadersAsync", exchange, static (a, e, c) => a.ResponseHeadersAsync(e, c), ct, HookScope);
        }

        if (response.BufferBody && responseBodyPending && !exchange.IsKilled && !exchange.IsSynthetic)
        {
            Phase = ExchangePhase.Response;
            var sink = new BufferingSink(_rt.Options.MaxBufferedBodyBytes);
            await BodyReader.RelayAsync(upstream.Transport.Input, responseFraming, upstream.ResponseDecoder, sink, new BodyRelayOptions(Message: response, Http2Origin: http2), ct);
            responseBodyPending = false;
            response.SetBufferedBody(sink.Body);
            response.Trailers = sink.Trailers;
        }

        Phase = ExchangePhase.Addon;
        if (!exchange.Addons.IsEmpty && !exchange.IsKilled)
        {
            await exchange.Addons.RunAsync("ResponseAsync", exchange, static (a, e, c) => a.ResponseAsync(e, c), ct, HookScope);
        }

        if (exchange.IsKilled)
        {
            if (exchangeCts is not null)
            {
                await exchangeCts.CancelAsync();
            }

            await upstream.DisposeAsync();
            return (false, 0);
        }

        CheckSendable(exchange.Response!);

        // RFC 9112 §6.3 item 1: a 204 or 304, or any response to HEAD, ends with its head. A hook that turned a response
        // with content into one of those (a 200 into a 204) leaves the origin's body unsent: relayed after that head,
        // a keep-alive client would read it as the next response. It is not read either, so that origin connection is
        // not reused (below), as for a body a hook replaced unread.
        if (responseBodyPending && !exchange.IsSynthetic && !ForwardingRules.ResponseMayHaveContent(request.Method, response.StatusCode))
        {
            response.SetBufferedBody(ReadOnlyMemory<byte>.Empty);
        }

        long bytes;
        if (exchange.IsSynthetic || response.HasBody)
        {
            // A hook replaced the response, or the body is in hand: send it whole with a fresh Content-Length.
            if (responseBodyPending)
            {
                // The origin's body was not read: that connection cannot carry another exchange.
                upstreamReusable = false;
            }

            Phase = ExchangePhase.ClientResponse;
            bytes = await _client.SendWholeResponseAsync(exchange.Response!, request, keepAlive, ct);
        }
        else
        {
            Phase = ExchangePhase.ClientResponse;
            (bytes, keepAlive) = await _client.StreamResponseAsync(upstream, request, response, responseFraming, keepAlive, ct);
        }

        // 9. Reuse the origin connection only when both bodies ended cleanly.
        if (bodyTask is not null)
        {
            if (!upstreamReusable && !bodyTask.IsCompleted)
            {
                // The origin answered early and is closing: the rest of the request body has nowhere to go.
                await exchangeCts!.CancelAsync();
            }

            // NOTE: otherwise the body task is awaited, not polled: its last write may still be completing even though
            // the origin already answered. An origin that answers early and keeps the connection must read the rest
            // of the body (RFC 9112 §9.3), so this wait ends.
            var bodyError = await bodyTask;
            if (bodyError is not null)
            {
                keepAlive = false;
                upstreamReusable = false;
            }
        }

        if (upstreamReusable && !_rt.Draining.IsCancellationRequested)
        {
            await _rt.Pool.ReturnAsync(upstream);
        }
        else
        {
            await upstream.DisposeAsync();
        }

        return (keepAlive, bytes);
    }

    /// <summary>
    /// The last check of the response the hooks left, before any of it goes out. The setters a hook uses refuse what
    /// could not be sent; this catches a response built without them (server replay of a recorded one), so that the
    /// client gets a 502 saying why, not a connection closed halfway through a status line.
    /// </summary>
    /// <exception cref="HttpProtocolException">The status is not final (RFC 9110 §15.2: the client would wait for
    /// another answer) or the reason phrase holds what RFC 9112 §4 does not allow.</exception>
    private static void CheckSendable(HttpResponse response)
    {
        if (!HttpResponse.IsFinalStatus(response.StatusCode))
        {
            throw new HttpProtocolException($"the response's status {response.StatusCode.ToString(CultureInfo.InvariantCulture)} is not a final status, {HttpResponse.MinFinalStatus}-{HttpResponse.MaxFinalStatus} (RFC 9110 §15)");
        }

        if (!Http1Parser.IsValidReasonPhrase(response.ReasonPhrase))
        {
            throw new HttpProtocolException("the response's reason phrase holds a control character or one above U+00FF (RFC 9112 §4)");
        }
    }

    /// <summary>Copies the client's streamed request body to the origin; returns the failure, if any, as a value.</summary>
    private async Task<Exception?> SendRequestBodyAsync(BodyFraming framing, HttpRequest request, UpstreamConnection upstream, bool raw, ExchangeTimings timings, CancellationTokenSource exchangeCts)
    {
        try
        {
            var transform = request.Transform;
            var transport = upstream.Transport;
            IBodySink sink;
            if (upstream.Http2 is { } stream)
            {
                // HTTP/2 frames the body itself (DATA, trailers as HEADERS): the sink gets it decoded (RFC 9113 §8.1).
                raw = false;
                sink = stream.CreateRequestSink(transform);
            }
            else
            {
                sink = raw ? new StreamSink(transport.Stream) : new ReframingSink(transport.Stream, chunked: transform is not null, transform, new ScratchBuffer(null, RequestFramingScratchBytes));
            }

            _rt.Metrics.BytesUpstream(await _client.ReadRequestBodyAsync(framing, sink, raw, transport, request, exchangeCts.Token));
            timings.RequestSent = _rt.Time.GetTimestamp();
            return null;
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or HttpProtocolException or ObjectDisposedException or MinDataRateException or TrailerListTooLargeException)
        {
            // The client stopped sending, or the origin stopped reading (or would refuse the trailers): the response side decides what the
            // client sees; a half-sent request must not leave the exchange waiting for the origin forever.
            if (ex is not OperationCanceledException)
            {
                await exchangeCts.CancelAsync();
            }

            // This relay reads the client: a body cut short is the client's doing, whatever the origin is up to.
            return ex is BodyTruncatedException truncated ? new ClientBodyEndedException(truncated) : ex;
        }
        catch (Exception ex)
        {
            // Anything else is code failing on the way (a hook's transform or body observer, or a bug): nothing more of
            // the body will be sent, so the wait for the response ends now too, with this as the exchange's reason.
            ProxyLog.RequestBodyCodeFailed(_rt.Logger, request.Host, request.Port, ex);
            await exchangeCts.CancelAsync();
            return new RequestBodyFailedException(ex);
        }
    }

    public void Dispose()
    {
        if (_ownsResponseHeadTimeout)
        {
            _responseHeadTimeout?.Dispose();
        }

        ReturnHookScope();
    }

    private void ReturnHookScope()
    {
        if (_hookScope is not null)
        {
            _rt.HookDeadlines.Return(_hookScope);
            _hookScope = null;
        }
    }

    /// <summary>What the steps of one forwarding share (it was eight parameters on each).</summary>
    private readonly record struct Forwarding(HttpExchange Exchange, ReceivedRequest Received, bool BodyPending, bool KeepAlive);
}
