using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Security.Authentication;
using System.Text;
using Interpose.Core;
using Interpose.Core.Http;
using Interpose.Core.Tls;

namespace Interpose.Proxy.Internal;

/// <summary>
/// One client connection, from accept to close: one async flow that owns the client transport and every origin
/// connection it opens.
/// </summary>
/// <remarks>
/// <code>
///  accept ─► read request head ─┬─ CONNECT ─► 200 ─► sniff first bytes ─┬─ TLS hello ─► hook/ignore ─┬─ intercept: TLS both sides ─► HTTP loop
///                               │                                       │                            └─ passthrough ─► byte relay
///                               │                                       ├─ HTTP ─► HTTP loop (plain, in tunnel)
///                               │                                       └─ other / nothing (server speaks first) ─► byte relay
///                               └─ absolute-form ─► exchange ─► next request head (keep-alive)
///  exchange: hooks(head) ─► [buffer body] ─► hooks(request) ─► pool/connect ─► spec wrapper ─► send head
///            ─► body (concurrently) ─► response head (1xx relayed) ─► hooks ─► spec wrapper ─► response to client
/// </code>
/// </remarks>
internal sealed partial class ClientSession
{
    /// <summary>A request body left unread by a synthetic answer is drained up to 1 MiB to keep the connection; beyond, it closes.</summary>
    private const long MaxDrainBytes = 1024 * 1024;

    /// <summary>
    /// A response body up to 8 KiB that arrived with its head is sent in the same write: head and body then fit in one
    /// TLS record (16 KiB of plaintext, RFC 8446 §5.1).
    /// </summary>
    private const long MaxCoalescedBodyBytes = 8 * 1024;

    private static readonly byte[] ConnectEstablished = "HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray();
    private static readonly byte[] Continue100 = "HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray();

    private readonly ProxyRuntime _rt;
    private readonly Socket _socket;
    private readonly ArrayBufferWriter<byte> _scratch = new(4096);
    private readonly ArrayBufferWriter<byte> _bodyScratch = new(4096);

    // One re-armed timeout each for the request-head and response-head waits of this connection, made on first use:
    // a new scope per wait was a linked CancellationTokenSource and a timer twice per exchange.
    private TimeoutScope? _requestHeadTimeout;
    private TimeoutScope? _responseHeadTimeout;
    private readonly ChunkedDecoder _requestDecoder;
    private readonly ChunkedDecoder _responseDecoder;
    private ClientConnection _info = null!;
    private Transport _client = null!;

    // Resumable head scans: a peer sending one byte per packet costs linear, not quadratic, parsing.
    private Http1HeadScan _requestScan;
    private Http1HeadScan _responseScan;

    // The origin connection opened for this tunnel ahead of its first request (ConnectionStrategy.Eager), until taken.
    private EagerConnection? _eager;

    // State of the exchange in flight (one at a time per connection).
    private ExchangePhase _phase;
    private bool _responseStarted;

    public ClientSession(ProxyRuntime runtime, Socket socket)
    {
        _rt = runtime;
        _socket = socket;
        _requestDecoder = new ChunkedDecoder(runtime.Options.Limits);
        _responseDecoder = new ChunkedDecoder(runtime.Options.Limits, inResponse: true);
    }

    public async Task RunAsync()
    {
        _info = new ClientConnection(_rt.NextClientId(), _socket.RemoteEndPoint, _socket.LocalEndPoint);
        await using var client = new Transport(_socket, new NetworkStream(_socket, ownsSocket: false));
        _client = client;

        // Past the shutdown deadline, closing the socket unblocks whatever this flow still waits on.
        await using var abort = _rt.Aborted.Register(static s => ((Socket)s!).Dispose(), _socket);
        await _rt.Addons.NotifyAsync("ClientConnectedAsync", _info, static (a, c, ct) => a.ClientConnectedAsync(c, ct), _rt.Logger, _rt.Aborted);
        try
        {
            await ServeHttpAsync(tunnel: null);
        }
        catch (Exception ex) when (IsConnectionFailure(ex))
        {
            ProxyLog.ClientConnectionEnded(_rt.Logger, _info, _phase, ex.Message);
        }
        catch (Exception ex)
        {
            ProxyLog.SessionCrashed(_rt.Logger, _info, ex);
        }
        finally
        {
            _requestHeadTimeout?.Dispose();
            _responseHeadTimeout?.Dispose();
            _requestBodyRate?.Dispose();
            _responseRate?.Dispose();
            await _rt.Addons.NotifyAsync("ClientDisconnectedAsync", _info, static (a, c, ct) => a.ClientDisconnectedAsync(c, ct), _rt.Logger, CancellationToken.None);
        }
    }

    private static bool IsConnectionFailure(Exception ex) =>
        ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or AuthenticationException;

    // ───────────────────────────── HTTP/1.1 loop ─────────────────────────────

    /// <summary>Serves requests on the client connection until it closes or must close.</summary>
    private async Task ServeHttpAsync(TunnelTarget? tunnel)
    {
        while (true)
        {
            var head = await ReadRequestHeadAsync();
            if (head is null || (tunnel is null && !await AdmitAsync(head)))
            {
                return;
            }

            if (tunnel is null && head.Method == "CONNECT")
            {
                await HandleConnectAsync(head);
                return;
            }

            var keepAlive = await HandleExchangeAsync(head, tunnel);
            if (!keepAlive || _rt.Draining.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Reads the next request head: the idle keep-alive timeout applies until its first byte, then the request-head
    /// timeout (slowloris). Returns null when the connection should close (clean close, timeout, malformed head).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<HttpRequestHead?> ReadRequestHeadAsync()
    {
        _phase = ExchangePhase.ClientRequest;
        var input = _client.Input;
        var scope = _requestHeadTimeout ??= new TimeoutScope(_rt.Time);
        scope.Arm(_rt.Options.Timeouts.IdleKeepAlive, _rt.Draining);
        var started = false;
        _requestScan.Reset();
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(scope.Token);
                var buffer = result.Buffer;
                if (!started && !buffer.IsEmpty)
                {
                    started = true;
                    scope.Reset(_rt.Options.Timeouts.RequestHead);
                }

                HttpRequestHead? head;
                SequencePosition consumed;
                try
                {
                    if (Http1Parser.TryParseRequestHead(buffer, _rt.Options.Limits, ref _requestScan, out head, out consumed))
                    {
                        input.AdvanceTo(consumed);
                        return head;
                    }
                }
                catch (HttpProtocolException ex)
                {
                    input.AdvanceTo(buffer.Start);
                    ProxyLog.BadRequest(_rt.Logger, _info, ex.Message, ex.StatusCode);
                    await SendErrorAsync(ex.StatusCode, "bad request: " + ex.Message);
                    return null;
                }

                if (result.IsCompleted)
                {
                    input.AdvanceTo(buffer.End);
                    return null;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (OperationCanceledException) when (scope.TimedOut)
        {
            if (started)
            {
                ProxyLog.RequestHeadTimeout(_rt.Logger, _info);
                await SendErrorAsync(408, "request head not received in time");
            }

            return null;
        }
        catch (OperationCanceledException) when (_rt.Draining.IsCancellationRequested && !started)
        {
            return null;
        }
        finally
        {
            scope.Disarm();
        }
    }

    /// <summary>Runs one exchange; returns whether the client connection may carry another request.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> HandleExchangeAsync(HttpRequestHead head, TunnelTarget? tunnel)
    {
        var startedAt = _rt.Time.GetTimestamp();
        _responseStarted = false;
        _phase = ExchangePhase.ClientRequest;

        // 1. Where the request goes, and how its body is framed.
        RequestTarget target;
        BodyFraming requestFraming;
        try
        {
            target = RequestTargetParser.Parse(head.Method, head.Target);
            requestFraming = MessageFraming.ForRequest(head);
        }
        catch (HttpProtocolException ex)
        {
            ProxyLog.BadRequest(_rt.Logger, _info, ex.Message, ex.StatusCode);
            await SendErrorAsync(ex.StatusCode, "bad request: " + ex.Message);
            return false;
        }

        string scheme, host, path;
        int port;
        if (target.Form == RequestTargetForm.Absolute)
        {
            (scheme, host, port, path) = (target.Scheme!, target.Host!, target.Port, target.PathAndQuery);

            // RFC 9110 §7.2: a proxy receiving absolute-form MUST replace the Host field with the target's authority.
            if (!SameAuthority(head.Headers.Get("Host"), scheme, host, port))
            {
                head.Headers.Set("Host", FormatAuthority(scheme, host, port));
            }
        }
        else if (tunnel is not null && target.Form is RequestTargetForm.Origin or RequestTargetForm.Asterisk)
        {
            (scheme, host, port, path) = (tunnel.Scheme, tunnel.Host, tunnel.Port, head.Target);
        }
        else
        {
            await SendErrorAsync(400, "Interpose is a proxy: requests need an absolute URL (http://host/path) or a CONNECT tunnel");
            return false;
        }

        var clientVersion = head.Version;
        var keepAlive = HopByHop.KeepAlive(head.Version, head.Headers);
        var request = new HttpRequest(head.Method, scheme, host, port, path, head.Version, head.Headers);
        var exchange = new HttpExchange(_rt.NextExchangeId(), _info, request, _rt.Time);
        exchange.Timings.RequestStarted = startedAt;
        var requestBodyPending = requestFraming.Kind != BodyKind.None && requestFraming != new BodyFraming(BodyKind.ContentLength, 0);
        if (!requestBodyPending)
        {
            request.SetBufferedBody(ReadOnlyMemory<byte>.Empty);
        }

        UpstreamConnection? upstream = null;
        long responseBytes = 0;
        var ct = _rt.Aborted;
        try
        {
            // 2. Hooks see the head before any body byte is read.
            _phase = ExchangePhase.Addon;
            if (!_rt.Addons.IsEmpty)
            {
                await _rt.Addons.RunAsync("RequestHeadersAsync", exchange, static (a, e, c) => a.RequestHeadersAsync(e, c), ct);
            }

            // 3. The whole body, if a hook asked for it.
            if (request.BufferBody && requestBodyPending && !exchange.IsKilled && !exchange.IsSynthetic)
            {
                _phase = ExchangePhase.ClientRequest;
                if (head.Headers.Contains("Expect"))
                {
                    // The proxy itself wants the body before forwarding, so it answers the expectation
                    // (RFC 9110 §10.1.1) instead of the origin, and does not forward it.
                    head.Headers.Remove("Expect");
                    await _client.Stream.WriteAsync(Continue100, ct);
                }

                // Measured as a streamed body is: buffering for a hook must not let a client trickle indefinitely.
                var sink = new BufferingSink(_rt.Options.MaxBufferedBodyBytes);
                await RelayRequestBodyAsync(request, requestFraming, sink, raw: false, destination: null, fromFirstByte: false, ct);
                requestBodyPending = false;
                request.SetBufferedBody(sink.Body);
                request.Trailers = sink.Trailers;
            }

            // 4. The request hook: last chance to change, answer or kill before the origin is contacted.
            _phase = ExchangePhase.Addon;
            if (!_rt.Addons.IsEmpty && !exchange.IsKilled && !exchange.IsSynthetic)
            {
                await _rt.Addons.RunAsync("RequestAsync", exchange, static (a, e, c) => a.RequestAsync(e, c), ct);
            }

            if (exchange.IsKilled)
            {
                return false;
            }

            if (exchange.IsSynthetic)
            {
                if (requestBodyPending)
                {
                    keepAlive &= await DrainAsync(request, requestFraming, ct);
                }

                if (!_rt.Addons.IsEmpty)
                {
                    await _rt.Addons.RunAsync("ResponseAsync", exchange, static (a, e, c) => a.ResponseAsync(e, c), ct);
                }

                if (exchange.IsKilled)
                {
                    return false;
                }

                responseBytes = await WriteWholeResponseAsync(exchange, exchange.Response!, request.Method, clientVersion, keepAlive, ct);
                return keepAlive;
            }

            // 5. Forward to the origin and relay the response.
            (keepAlive, responseBytes, upstream) = await ForwardAsync(exchange, head, requestFraming, requestBodyPending, clientVersion, keepAlive, tunnel, ct);
            return keepAlive;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !_rt.Aborted.IsCancellationRequested)
        {
            var error = ex switch
            {
                UpstreamUnavailableException unavailable => unavailable.Error,
                ExchangeTimeoutException timeout => Failures.Describe(timeout.Phase, timeout.InnerException!, timedOut: true),
                _ => Failures.Describe(_phase, ex),
            };
            exchange.Error = error;
            _rt.Metrics.Error(error);
            ProxyLog.UpstreamFailed(_rt.Logger, _info, request.Host, request.Port, error.Phase, error.IsTransient ? "transient" : "permanent", error.Message);
            if (ex is AddonException addon)
            {
                ProxyLog.AddonFailed(_rt.Logger, addon.Addon, addon.Hook, exchange.Id, addon.InnerException!);
            }

            await _rt.Addons.NotifyAsync("ErrorAsync", exchange, static (a, e, c) => a.ErrorAsync(e, c), _rt.Logger, ct);
            if (!_responseStarted && error.Phase != ExchangePhase.ClientResponse)
            {
                var status = ex is HttpProtocolException protocol && error.Phase == ExchangePhase.ClientRequest
                    ? protocol.StatusCode
                    : Failures.StatusFor(error);
                await SendErrorAsync(status, DescribeForClient(request, error));
            }

            if (upstream is not null)
            {
                await upstream.DisposeAsync();
            }

            return false;
        }
        finally
        {
            exchange.Timings.Done = _rt.Time.GetTimestamp();
            _rt.Metrics.ExchangeDone(exchange, exchange.Timings.Total);
            _rt.Metrics.BytesUpstream(request.HasBody ? request.Body.Length : 0);
            _rt.Metrics.BytesDownstream(responseBytes);
            await _rt.Addons.NotifyAsync("DoneAsync", exchange, static (a, e, c) => a.DoneAsync(e, c), _rt.Logger, CancellationToken.None);
            LogFlow(exchange, responseBytes);
        }
    }

    /// <summary>Steps 5 to 9 of an exchange: origin connection, request out, response back.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(bool KeepAlive, long ResponseBytes, UpstreamConnection? Failed)> ForwardAsync(
        HttpExchange exchange, HttpRequestHead head, BodyFraming requestFraming, bool requestBodyPending, Version clientVersion, bool keepAlive, TunnelTarget? tunnel, CancellationToken ct)
    {
        var request = exchange.Request;
        var sni = request.Scheme != "https" ? null
            : tunnel is not null && tunnel.Host == request.Host ? tunnel.Sni
            : IPAddress.TryParse(request.Host, out _) ? null : request.Host;
        var key = new UpstreamKey(request.Scheme, request.Host, request.Port, sni);

        // 5. The spec wrapper around the hooks: hop-by-hop fields out, framing fixed for what will really be sent.
        var upgrade = HopByHop.IsUpgradeRequest(head);
        var streamBody = requestBodyPending ? requestFraming : default;
        var sendRawChunked = requestBodyPending && requestFraming.Kind == BodyKind.Chunked && request.StreamTransform is null;
        HopByHop.Remove(request.Headers, keepUpgrade: upgrade, keepTransferEncoding: sendRawChunked);
        if (request.HasBody && (request.BodyReplaced || requestFraming.Kind != BodyKind.None))
        {
            request.Headers.Remove("Transfer-Encoding");
            request.Headers.Set("Content-Length", request.Body.Length.ToString(CultureInfo.InvariantCulture));
        }
        else if (requestBodyPending && request.StreamTransform is not null)
        {
            // The transform may change the length: send chunked (HTTP/1.1 upstream).
            request.Headers.Remove("Content-Length");
            request.Headers.Set("Transfer-Encoding", "chunked");
            request.Version = HttpVersion.Version11;
        }

        if (_rt.Options.AddVia)
        {
            request.Headers.Add("Via", ViaValue(request.Version));
        }

        // 6. An origin connection: reused if one is idle, else new. A reused one may have been closed by the origin
        //    just now; when nothing of the body left the client yet, one retry on a fresh connection is safe.
        UpstreamConnection? upstream = null;
        HttpResponseHead responseHead;
        Task<Exception?>? bodyTask = null;
        // Only a streamed request body runs beside the exchange and needs its own cancellation; the others use the
        // proxy's token as is (a linked source per exchange was 190 B of the per-exchange allocations).
        using var exchangeCts = requestBodyPending ? CancellationTokenSource.CreateLinkedTokenSource(ct) : null;
        var exchangeToken = exchangeCts?.Token ?? ct;
        for (var attempt = 0; ; attempt++)
        {
            _phase = ExchangePhase.Connect;
            upstream = await TakeEagerAsync(key, exchange) ?? await _rt.Pool.TryRentAsync(key);
            if (upstream is null)
            {
                var connect = await _rt.Connector.ConnectAsync(key, exchange, ct);
                if (connect.Error is not null)
                {
                    throw new UpstreamUnavailableException(connect.Error);
                }

                upstream = connect.Connection!;
            }

            exchange.Server = upstream.Info;
            var canRetry = upstream.IsReused && attempt == 0 && !requestBodyPending;
            try
            {
                // 7. Request head (and a buffered body) out; a streamed body goes concurrently, so that an origin
                //    answering early (100-continue, 413) is heard.
                _phase = ExchangePhase.Request;
                _scratch.ResetWrittenCount();
                Http1Parser.WriteRequestHead(request.Method, request.Path, request.Version, request.Headers, _scratch);
                if (request.HasBody && !request.Body.IsEmpty && request.Body.Length <= _scratch.FreeCapacity)
                {
                    _scratch.Write(request.Body.Span);
                    await upstream.Transport.Stream.WriteAsync(_scratch.WrittenMemory, ct);
                }
                else
                {
                    await upstream.Transport.Stream.WriteAsync(_scratch.WrittenMemory, ct);
                    if (request.HasBody && !request.Body.IsEmpty)
                    {
                        await upstream.Transport.Stream.WriteAsync(request.Body, ct);
                    }
                }

                if (requestBodyPending)
                {
                    bodyTask = SendRequestBodyAsync(request, streamBody, request.StreamTransform, upstream.Transport, sendRawChunked, exchange.Timings, exchangeCts!);
                }
                else
                {
                    exchange.Timings.RequestSent = _rt.Time.GetTimestamp();
                }

                // 8. Response head; 1xx interim responses are relayed (RFC 9110 §15.2), never invented.
                _phase = ExchangePhase.Response;
                responseHead = await ReadResponseHeadAsync(upstream, exchange, clientVersion, exchangeToken);
                break;
            }
            catch (Exception ex) when (canRetry && ex is IOException or SocketException or EmptyResponseException)
            {
                await upstream.DisposeAsync();
                upstream = null;
            }
            catch
            {
                await upstream.DisposeAsync();
                if (bodyTask is not null)
                {
                    // A malformed streamed body (RFC 9112 §7.1), or one sent below the minimum rate, cancels the wait for
                    // the response: the client's fault is the failure to report (400, 408), not the cancelled wait
                    // (which would read as a 504).
                    await exchangeCts!.CancelAsync();
                    if (await bodyTask is { } clientFault and (HttpProtocolException or MinDataRateException))
                    {
                        _phase = ExchangePhase.ClientRequest;
                        ExceptionDispatchInfo.Throw(clientFault);
                    }
                }

                throw;
            }
        }

        try
        {
            return await RelayResponseAsync(exchange, upstream, responseHead, clientVersion, keepAlive, bodyTask, exchangeCts, exchangeToken);
        }
        catch (Exception ex)
        {
            if (exchangeCts is not null)
            {
                await exchangeCts.CancelAsync();
            }

            await upstream.DisposeAsync();

            // The response was under way when the request body, still streaming, fell below the minimum rate: that,
            // not the cancelled relay, is why the exchange ended.
            if (ex is OperationCanceledException && bodyTask is not null && await bodyTask is MinDataRateException slowBody)
            {
                ExceptionDispatchInfo.Throw(slowBody);
            }

            throw;
        }
    }

    /// <summary>The connection opened ahead for this tunnel, when the request goes where it was opened to.</summary>
    /// <exception cref="UpstreamUnavailableException">Opening it failed; the error says in which phase.</exception>
    private async ValueTask<UpstreamConnection?> TakeEagerAsync(UpstreamKey key, HttpExchange exchange)
    {
        if (_eager is not { } eager || eager.Key != key)
        {
            return null;
        }

        _eager = null;
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

    /// <summary>Steps 8 to 9: hooks on the response, spec wrapper, response to the client, connection reuse.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(bool KeepAlive, long ResponseBytes, UpstreamConnection? Failed)> RelayResponseAsync(
        HttpExchange exchange, UpstreamConnection upstream, HttpResponseHead responseHead, Version clientVersion, bool keepAlive, Task<Exception?>? bodyTask, CancellationTokenSource? exchangeCts, CancellationToken ct)
    {
        var request = exchange.Request;
        var responseFraming = MessageFraming.ForResponse(responseHead, request.Method);
        var upstreamReusable = HopByHop.KeepAlive(responseHead.Version, responseHead.Headers) && responseFraming.Kind != BodyKind.CloseDelimited;
        var response = new HttpResponse(responseHead.StatusCode, responseHead.ReasonPhrase, responseHead.Version, responseHead.Headers);
        exchange.Response = response;
        var responseBodyPending = responseFraming.Kind != BodyKind.None;
        if (!responseBodyPending)
        {
            response.SetBufferedBody(ReadOnlyMemory<byte>.Empty);
        }

        // An accepted upgrade (WebSocket): relay the 101, then bytes both ways until both sides close.
        if (responseHead.StatusCode == 101)
        {
            _phase = ExchangePhase.ClientResponse;
            _responseStarted = true;
            _scratch.ResetWrittenCount();
            Http1Parser.WriteResponseHead(responseHead, _scratch);
            await _client.Stream.WriteAsync(_scratch.WrittenMemory, ct);
            var (up, down) = await TunnelRelay.RunAsync(_client, upstream.Transport, ct);
            ProxyLog.TunnelClosed(_rt.Logger, _info, "upgraded", request.Host, request.Port, up, down);
            _rt.Metrics.BytesUpstream(up);
            await upstream.DisposeAsync();
            return (false, down, null);
        }

        _phase = ExchangePhase.Addon;
        if (!_rt.Addons.IsEmpty)
        {
            await _rt.Addons.RunAsync("ResponseHeadersAsync", exchange, static (a, e, c) => a.ResponseHeadersAsync(e, c), ct);
        }

        if (response.BufferBody && responseBodyPending && !exchange.IsKilled && !exchange.IsSynthetic)
        {
            _phase = ExchangePhase.Response;
            var sink = new BufferingSink(_rt.Options.MaxBufferedBodyBytes);
            await BodyReader.RelayAsync(upstream.Transport.Input, responseFraming, _responseDecoder, sink, raw: false, destination: null, ct);
            responseBodyPending = false;
            response.SetBufferedBody(sink.Body);
            response.Trailers = sink.Trailers;
        }

        _phase = ExchangePhase.Addon;
        if (!_rt.Addons.IsEmpty && !exchange.IsKilled)
        {
            await _rt.Addons.RunAsync("ResponseAsync", exchange, static (a, e, c) => a.ResponseAsync(e, c), ct);
        }

        if (exchange.IsKilled)
        {
            if (exchangeCts is not null)
            {
                await exchangeCts.CancelAsync();
            }

            await upstream.DisposeAsync();
            return (false, 0, null);
        }

        long bytes;
        if (exchange.IsSynthetic || response.HasBody)
        {
            // A hook replaced the response, or the body is in hand: send it whole with a fresh Content-Length.
            var toSend = exchange.Response!;
            if (responseBodyPending)
            {
                // The origin's body was not read: that connection cannot carry another exchange.
                upstreamReusable = false;
            }

            bytes = await WriteWholeResponseAsync(exchange, toSend, request.Method, clientVersion, keepAlive, ct);
        }
        else
        {
            (bytes, keepAlive) = await StreamResponseAsync(upstream, request, response, responseFraming, clientVersion, keepAlive, ct);
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

        return (keepAlive, bytes, null);
    }

    /// <summary>Relays a streamed response body with the framing the client can read.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(long Bytes, bool KeepAlive)> StreamResponseAsync(
        UpstreamConnection upstream, HttpRequest request, HttpResponse response, BodyFraming framing, Version clientVersion, bool keepAlive, CancellationToken ct)
    {
        var clientIs10 = clientVersion == HttpVersion.Version10;
        var hasBody = framing.Kind != BodyKind.None;
        var transform = hasBody ? response.StreamTransform : null;

        // How the body reaches the client:
        //  raw      — bytes as the origin framed them (Content-Length or chunked passed through): the fast path;
        //  chunked  — re-framed after a transform (HTTP/1.1 client);
        //  close    — re-framed by closing (HTTP/1.0 client, RFC 9112 §6.1: no chunked to 1.0; or close-delimited origin).
        var rechunk = transform is not null && !clientIs10;
        var closeDelimited = framing.Kind == BodyKind.CloseDelimited
            || (clientIs10 && (framing.Kind == BodyKind.Chunked || transform is not null));
        var raw = transform is null && !(clientIs10 && framing.Kind == BodyKind.Chunked);
        var rawChunked = raw && framing.Kind == BodyKind.Chunked;
        if (closeDelimited)
        {
            keepAlive = false;
        }

        var headers = response.Headers;
        HopByHop.Remove(headers, keepUpgrade: false, keepTransferEncoding: rawChunked);
        if (transform is not null || (closeDelimited && framing.Kind == BodyKind.Chunked))
        {
            headers.Remove("Content-Length");
            headers.Remove("Transfer-Encoding");
        }

        if (rechunk)
        {
            headers.Set("Transfer-Encoding", "chunked");
        }

        AddConnectionField(headers, clientVersion, keepAlive);
        if (_rt.Options.AddVia)
        {
            headers.Add("Via", ViaValue(response.Version));
        }

        _phase = ExchangePhase.ClientResponse;
        _responseStarted = true;
        _scratch.ResetWrittenCount();
        Http1Parser.WriteResponseHead(response.Version, response.StatusCode, response.ReasonPhrase, headers, _scratch);

        // From the head on, the client is measured while the proxy waits for writes to it (not for the origin).
        var rate = StartResponseRate(ct, out var clientToken);
        try
        {
            return await SendStreamedResponseAsync(upstream, framing, raw, rechunk, transform, keepAlive, rate, clientToken);
        }
        catch (OperationCanceledException ex) when (rate is { Violated: true })
        {
            throw ClientTooSlow(rate, request, ExchangePhase.ClientResponse, ex);
        }
        finally
        {
            rate?.Stop();
        }
    }

    /// <summary>Sends the head in <see cref="_scratch"/> and relays the body, timing the writes to the client.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(long Bytes, bool KeepAlive)> SendStreamedResponseAsync(
        UpstreamConnection upstream, BodyFraming framing, bool raw, bool rechunk, BodyTransform? transform, bool keepAlive, DataRateMonitor? rate, CancellationToken ct)
    {
        // A small body that already arrived with the head leaves in the same write: one TLS record and one syscall
        // instead of two, which is most of an API response's cost.
        if (raw && framing.Kind == BodyKind.ContentLength && framing.ContentLength <= MaxCoalescedBodyBytes
            && upstream.Transport.Input.TryRead(out var ready))
        {
            if (ready.Buffer.Length >= framing.ContentLength)
            {
                var body = ready.Buffer.Slice(0, framing.ContentLength);
                foreach (var segment in body)
                {
                    _scratch.Write(segment.Span);
                }

                upstream.Transport.Input.AdvanceTo(body.End);
                await WriteToClientAsync(_scratch.WrittenMemory, rate, ct);
                return (framing.ContentLength, keepAlive);
            }

            upstream.Transport.Input.AdvanceTo(ready.Buffer.Start);
        }

        await WriteToClientAsync(_scratch.WrittenMemory, rate, ct);
        if (framing.Kind == BodyKind.None)
        {
            return (0, keepAlive);
        }

        IBodySink sink = raw ? new StreamSink(_client.Stream) : new ReframingSink(_client.Stream, rechunk, transform, _bodyScratch);
        _phase = ExchangePhase.Response;
        var bytes = await BodyReader.RelayAsync(upstream.Transport.Input, framing, _responseDecoder, sink, raw, _client, readRate: null, writeRate: rate, ct);
        return (bytes, keepAlive);
    }

    /// <summary>Sends a response whose body is in memory (synthetic, buffered or replaced).</summary>
    private async ValueTask<long> WriteWholeResponseAsync(HttpExchange exchange, HttpResponse response, string method, Version clientVersion, bool keepAlive, CancellationToken ct)
    {
        var headers = response.Headers;
        HopByHop.Remove(headers, keepUpgrade: false, keepTransferEncoding: false);
        var bodyAllowed = method != "HEAD" && response.StatusCode is not (204 or 304) && response.StatusCode >= 200;
        if (bodyAllowed)
        {
            headers.Set("Content-Length", response.Body.Length.ToString(CultureInfo.InvariantCulture));
        }
        else if (response.StatusCode is 204 || response.StatusCode < 200)
        {
            // RFC 9110 §8.6: no Content-Length in 1xx or 204.
            headers.Remove("Content-Length");
        }

        AddConnectionField(headers, clientVersion, keepAlive);
        _phase = ExchangePhase.ClientResponse;
        _responseStarted = true;
        _scratch.ResetWrittenCount();
        Http1Parser.WriteResponseHead(HttpVersion.Version11, response.StatusCode, response.ReasonPhrase, headers, _scratch);
        var body = bodyAllowed ? response.Body : ReadOnlyMemory<byte>.Empty;
        var rate = StartResponseRate(ct, out var clientToken);
        try
        {
            if (body.Length <= _scratch.FreeCapacity)
            {
                _scratch.Write(body.Span);
                await WriteToClientAsync(_scratch.WrittenMemory, rate, clientToken);
            }
            else
            {
                await WriteToClientAsync(_scratch.WrittenMemory, rate, clientToken);
                await WriteToClientAsync(body, rate, clientToken);
            }
        }
        catch (OperationCanceledException ex) when (rate is { Violated: true })
        {
            throw ClientTooSlow(rate, exchange.Request, ExchangePhase.ClientResponse, ex);
        }
        finally
        {
            rate?.Stop();
        }

        return body.Length;
    }

    /// <summary>Copies the client's streamed request body to the origin; returns the failure, if any, as a value.</summary>
    private async Task<Exception?> SendRequestBodyAsync(HttpRequest request, BodyFraming framing, BodyTransform? transform, Transport upstream, bool raw, ExchangeTimings timings, CancellationTokenSource exchangeCts)
    {
        try
        {
            IBodySink sink = raw ? new StreamSink(upstream.Stream) : new ReframingSink(upstream.Stream, chunked: transform is not null, transform, new ArrayBufferWriter<byte>());

            // RFC 9110 §10.1.1: a client that sent Expect: 100-continue may wait for the origin's 100 before its body;
            // that wait is the origin's, so the rate's clock starts with the first body byte.
            var expectsContinue = request.Headers.Contains("Expect");
            _rt.Metrics.BytesUpstream(await RelayRequestBodyAsync(request, framing, sink, raw, upstream, fromFirstByte: expectsContinue, exchangeCts.Token));
            timings.RequestSent = _rt.Time.GetTimestamp();
            return null;
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or HttpProtocolException or ObjectDisposedException or MinDataRateException)
        {
            // The client stopped sending, or the origin stopped reading: the response side decides what the
            // client sees; a half-sent request must not leave the exchange waiting for the origin forever.
            if (ex is not OperationCanceledException)
            {
                await exchangeCts.CancelAsync();
            }

            return ex;
        }
    }

    /// <summary>Reads the final response head, relaying 1xx interim responses to HTTP/1.1 clients.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<HttpResponseHead> ReadResponseHeadAsync(UpstreamConnection upstream, HttpExchange exchange, Version clientVersion, CancellationToken ct)
    {
        var input = upstream.Transport.Input;
        var scope = _responseHeadTimeout ??= new TimeoutScope(_rt.Time);
        scope.Arm(_rt.Options.Timeouts.ResponseHead, ct);
        var sawAnyByte = false;
        _responseScan.Reset();
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(scope.Token);
                var buffer = result.Buffer;
                if (!sawAnyByte && !buffer.IsEmpty)
                {
                    sawAnyByte = true;
                    exchange.Timings.FirstByte = _rt.Time.GetTimestamp();
                }

                if (Http1Parser.TryParseResponseHead(buffer, _rt.Options.Limits, ref _responseScan, out var head, out var consumed))
                {
                    input.AdvanceTo(consumed);
                    _responseScan.Reset();
                    if (head.StatusCode is >= 100 and < 200 and not 101)
                    {
                        // RFC 9110 §15.2: a proxy forwards 1xx, except to HTTP/1.0 clients which cannot read them.
                        if (clientVersion != HttpVersion.Version10)
                        {
                            _scratch.ResetWrittenCount();
                            Http1Parser.WriteResponseHead(head, _scratch);
                            await _client.Stream.WriteAsync(_scratch.WrittenMemory, ct);
                        }

                        continue;
                    }

                    return head;
                }

                if (result.IsCompleted)
                {
                    input.AdvanceTo(buffer.End);
                    throw sawAnyByte
                        ? new IOException("the origin closed the connection in the middle of the response head")
                        : new EmptyResponseException();
                }

                input.AdvanceTo(buffer.Start, buffer.End);
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

    /// <summary>Reads and discards an unread request body, up to a limit; false when the connection must close.</summary>
    /// <exception cref="MinDataRateException">The client sent the body below the minimum rate.</exception>
    private async ValueTask<bool> DrainAsync(HttpRequest request, BodyFraming framing, CancellationToken ct)
    {
        if (framing.Kind == BodyKind.ContentLength && framing.ContentLength > MaxDrainBytes)
        {
            return false;
        }

        var sink = new BufferingSink(MaxDrainBytes);
        try
        {
            await RelayRequestBodyAsync(request, framing, sink, raw: false, destination: null, fromFirstByte: request.Headers.Contains("Expect"), ct);
            return true;
        }
        catch (BodyTooLargeException)
        {
            return false;
        }
    }

    // ───────────────────────────── CONNECT tunnels ─────────────────────────────

    /// <summary>RFC 9110 §9.3.6: answer 200, then decide what the tunnel carries from its first bytes.</summary>
    private async Task HandleConnectAsync(HttpRequestHead head)
    {
        RequestTarget target;
        try
        {
            target = RequestTargetParser.Parse(head.Method, head.Target);
        }
        catch (HttpProtocolException ex)
        {
            ProxyLog.BadRequest(_rt.Logger, _info, ex.Message, ex.StatusCode);
            await SendErrorAsync(400, "bad CONNECT target: " + ex.Message);
            return;
        }

        var host = target.Host!;
        var port = target.Port;
        _info.ConnectAuthority = head.Target;
        if (_rt.Options.ConnectionStrategy == ConnectionStrategy.Eager && !IsIgnored(host, port))
        {
            // The client needs a moment after the 200 to set up its TLS and send the ClientHello; forging the leaf for
            // the CONNECT host (almost always the SNI) meanwhile takes the forge out of the handshake's time.
            _rt.Leaves.Prefetch(host);
        }

        await _client.Stream.WriteAsync(ConnectEstablished, _rt.Aborted);

        var protocol = await SniffAsync();
        if (protocol is null)
        {
            // Nothing from the client within the wait: a server-speaks-first protocol, or only a slow client.
            protocol = await AwaitFirstSpeakerAsync(host, port);
            if (protocol is null)
            {
                return;
            }
        }

        switch (protocol)
        {
            case SniffedProtocol.Tls:
                await HandleTlsAsync(host, port);
                break;
            case SniffedProtocol.Http:
                await ServeHttpAsync(new TunnelTarget("http", host, port, null));
                break;
            default:
                // Bytes that are neither TLS nor HTTP: relayed as they are.
                await RelayRawAsync(host, port, "tcp");
                break;
        }
    }

    /// <summary>
    /// The client said nothing within <see cref="ProxyTimeouts.ServerFirstWait"/>: connect, then let whoever speaks
    /// first decide. The server (an SMTP, FTP or database banner): its bytes are relayed both ways on this connection.
    /// The client (a slow one; a ClientHello after the wait is still a ClientHello): the connection is closed unused
    /// and the client's bytes are sniffed as if they had come in time, so a slow TLS client is still intercepted.
    /// </summary>
    /// <returns>What the client's first bytes are; null when the tunnel was served here (relayed, or the connect failed).</returns>
    private async ValueTask<SniffedProtocol?> AwaitFirstSpeakerAsync(string host, int port)
    {
        if (await ConnectRawAsync(host, port) is not { } upstream)
        {
            return null;
        }

        var clientInput = _client.Input;
        var serverInput = upstream.Transport.Input;
        var clientRead = clientInput.ReadAsync(_rt.Aborted).AsTask();
        var serverRead = serverInput.ReadAsync(_rt.Aborted).AsTask();
        await Task.WhenAny(clientRead, serverRead);

        // Stop the read that lost (it returns at once, marked cancelled) and put every byte back for the next reader.
        if (!clientRead.IsCompleted)
        {
            clientInput.CancelPendingRead();
        }

        if (!serverRead.IsCompleted)
        {
            serverInput.CancelPendingRead();
        }

        ReadResult client, server;
        try
        {
            server = await serverRead;
        }
        catch (Exception ex) when (ex is IOException or SocketException)
        {
            // The origin reset before either side said a word: nothing to relay.
            await upstream.DisposeAsync();
            _ = await clientRead;
            ProxyLog.UpstreamFailed(_rt.Logger, _info, host, port, ExchangePhase.Response, "transient", ex.Message);
            return null;
        }

        try
        {
            client = await clientRead;
        }
        catch
        {
            // The client reset, or the proxy is stopping: the session ends with that; the origin connection goes too.
            await upstream.DisposeAsync();
            throw;
        }

        clientInput.AdvanceTo(client.Buffer.Start);
        serverInput.AdvanceTo(server.Buffer.Start);
        if (!server.Buffer.IsEmpty || server.IsCompleted)
        {
            // The server spoke (or closed) first: relay, banner included, on the connection that heard it.
            await RelayRawAsync(host, port, "tcp", upstream);
            return null;
        }

        await upstream.DisposeAsync();
        if (client.Buffer.IsEmpty && client.IsCompleted)
        {
            // The client closed without a word: nothing to relay.
            return null;
        }

        return await SniffAsync() ?? SniffedProtocol.Unknown;
    }

    /// <summary>Looks at the tunnel's first bytes without consuming them.</summary>
    /// <returns>What they are; null when none came within <see cref="ProxyTimeouts.ServerFirstWait"/>.</returns>
    private async ValueTask<SniffedProtocol?> SniffAsync()
    {
        var input = _client.Input;
        using var wait = new TimeoutScope(_rt.Time, _rt.Options.Timeouts.ServerFirstWait, _rt.Aborted);
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(wait.Token);
                var buffer = result.Buffer;
                var protocol = ProtocolSniffer.Detect(buffer);
                if (protocol != SniffedProtocol.NeedMoreData || result.IsCompleted)
                {
                    input.AdvanceTo(buffer.Start);
                    return protocol == SniffedProtocol.NeedMoreData ? SniffedProtocol.Unknown : protocol;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (OperationCanceledException) when (wait.TimedOut)
        {
            return null;
        }
    }

    /// <summary>A TLS ClientHello arrived: intercept, pass through or reject.</summary>
    private async Task HandleTlsAsync(string host, int port)
    {
        var input = _client.Input;
        using var scope = new TimeoutScope(_rt.Time, _rt.Options.Timeouts.TlsHandshake, _rt.Aborted);
        ClientHello? hello;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(scope.Token);
                var buffer = result.Buffer;
                var status = ClientHelloReader.TryRead(buffer, out hello);
                if (status == ClientHelloParseStatus.Incomplete && !result.IsCompleted)
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                input.AdvanceTo(buffer.Start);
                if (status != ClientHelloParseStatus.Parsed)
                {
                    // Looks like TLS but cannot be read: relay it untouched rather than break the client.
                    await RelayRawAsync(host, port, "unparsed-tls");
                    return;
                }

                break;
            }
        }
        catch (OperationCanceledException) when (scope.TimedOut)
        {
            ProxyLog.ClientTlsFailed(_rt.Logger, _info, host, "no complete ClientHello in time");
            return;
        }

        _info.Sni = hello!.ServerName;
        _info.OfferedAlpn = hello.ApplicationProtocols;
        var serverName = WithoutPort(hello.ServerName);
        var certificateHost = serverName ?? host;
        var decision = IsIgnored(certificateHost, port) || IsIgnored(host, port) ? TlsDecision.Passthrough : TlsDecision.Intercept;
        var context = new TlsClientHelloContext(_info, hello, certificateHost, port, decision);
        try
        {
            await _rt.Addons.RunAsync("TlsClientHelloAsync", context, static (a, c, ct) => a.TlsClientHelloAsync(c, ct), scope.Token);
        }
        catch (AddonException ex)
        {
            ProxyLog.AddonHookFailed(_rt.Logger, ex.Addon, ex.Hook, ex.InnerException!);
            return;
        }

        switch (context.Decision)
        {
            case TlsDecision.Reject:
                return;
            case TlsDecision.Passthrough:
                scope.Dispose();
                await RelayRawAsync(host, port, "tls-passthrough");
                return;
        }

        // Eager: the origin's TCP and TLS set-up runs while the client's handshake below completes.
        var sni = serverName ?? (IPAddress.TryParse(host, out _) ? null : host);
        var tunnel = new TunnelTarget("https", host, port, sni);
        if (_rt.Options.ConnectionStrategy == ConnectionStrategy.Eager && !_rt.Pool.HasIdle(tunnel.OriginKey))
        {
            _eager = EagerConnection.Start(_rt, tunnel.OriginKey, _rt.Aborted);
        }

        try
        {
            await InterceptAsync(context, hello, certificateHost, tunnel, scope);
        }
        finally
        {
            if (_eager is { } unused)
            {
                // No request took it (the client left, or went elsewhere): closed.
                _eager = null;
                await unused.DisposeAsync();
            }
        }
    }

    /// <summary>Completes the client's TLS handshake with a forged (or the hook's) certificate, then serves HTTP inside.</summary>
    private async Task InterceptAsync(TlsClientHelloContext context, ClientHello hello, string certificateHost, TunnelTarget tunnel, TimeoutScope scope)
    {
        // Intercept: present a certificate for the name the client asked for, TLS 1.2+ with forward-secret AEAD.
        var ssl = _client.WrapInTls();
        try
        {
            var certificate = context.Certificate ?? await _rt.Leaves.GetAsync(certificateHost, scope.Token);
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = certificate,
                EnabledSslProtocols = TlsPolicy.Protocols,
                CipherSuitesPolicy = TlsPolicy.CipherSuitesFor(_rt.Options),
                ApplicationProtocols = TlsPolicy.ServerProtocolsFor(hello.ApplicationProtocols),
                ClientCertificateRequired = false,
            }, scope.Token);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException && !_rt.Aborted.IsCancellationRequested)
        {
            _rt.Metrics.TlsHandshake(client: true, ok: false);
            ProxyLog.ClientTlsFailed(_rt.Logger, _info, certificateHost, scope.TimedOut ? "handshake timeout" : ex.Message);
            return;
        }

        _rt.Metrics.TlsHandshake(client: true, ok: true);
        _info.TlsVersion = ssl.SslProtocol;
        _info.CipherSuite = ssl.NegotiatedCipherSuite;
        _info.Alpn = ssl.NegotiatedApplicationProtocol.Protocol.IsEmpty ? null : ssl.NegotiatedApplicationProtocol.ToString();
        scope.Dispose();
        await ServeHttpAsync(tunnel);
    }

    /// <summary>
    /// RFC 6066 §3: the SNI is a bare host name, but some clients send "host:port" (Go's tls.Config.ServerName set from
    /// req.Host, as hey does); the port is dropped so the certificate and the origin's SNI name the host.
    /// </summary>
    internal static string? WithoutPort(string? serverName)
    {
        var colon = serverName?.LastIndexOf(':') ?? -1;
        if (colon <= 0 || serverName!.IndexOf(':') != colon || colon == serverName.Length - 1)
        {
            return serverName;
        }

        foreach (var c in serverName.AsSpan(colon + 1))
        {
            if (!char.IsAsciiDigit(c))
            {
                return serverName;
            }
        }

        return serverName[..colon];
    }

    private bool IsIgnored(string host, int port)
    {
        var patterns = _rt.Options.IgnoreHosts;
        if (patterns.Count == 0)
        {
            return false;
        }

        var withPort = host + ":" + port.ToString(CultureInfo.InvariantCulture);
        foreach (var pattern in patterns)
        {
            if (pattern.IsMatch(host) || pattern.IsMatch(withPort))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A TCP connection to host:port for a byte relay; null when it failed (counted and logged).</summary>
    private async ValueTask<UpstreamConnection?> ConnectRawAsync(string host, int port)
    {
        _phase = ExchangePhase.Connect;
        var connect = await _rt.Connector.ConnectAsync(new UpstreamKey("tcp", host, port, null), null, _rt.Aborted);
        if (connect.Error is { } error)
        {
            _rt.Metrics.Error(error);
            ProxyLog.UpstreamFailed(_rt.Logger, _info, host, port, error.Phase, error.IsTransient ? "transient" : "permanent", error.Message);
            return null;
        }

        return connect.Connection;
    }

    /// <summary>
    /// Relays the tunnel's bytes to host:port untouched, both ways, until both sides close; on
    /// <paramref name="connected"/> when given, else on a new connection.
    /// </summary>
    private async Task RelayRawAsync(string host, int port, string mode, UpstreamConnection? connected = null)
    {
        connected ??= await ConnectRawAsync(host, port);
        if (connected is null)
        {
            return;
        }

        await using var upstream = connected;
        _phase = ExchangePhase.Response;
        var (up, down) = await TunnelRelay.RunAsync(_client, upstream.Transport, _rt.Aborted);
        ProxyLog.TunnelClosed(_rt.Logger, _info, mode, host, port, up, down);
        _rt.Metrics.BytesUpstream(up);
        _rt.Metrics.BytesDownstream(down);
    }

    // ───────────────────────────── helpers ─────────────────────────────

    /// <summary>A clear answer instead of a silent close: status, a one-line reason, then close.</summary>
    private async ValueTask SendErrorAsync(int status, string message)
    {
        try
        {
            var body = Encoding.UTF8.GetBytes("Interpose: " + message + "\n");
            var head = string.Create(CultureInfo.InvariantCulture,
                $"HTTP/1.1 {status} {ReasonPhrases.For(status)}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
            _scratch.ResetWrittenCount();
            Encoding.ASCII.GetBytes(head, _scratch);
            _scratch.Write(body);
            _responseStarted = true;
            await _client.Stream.WriteAsync(_scratch.WrittenMemory, _rt.Aborted);
        }
        catch (Exception ex) when (IsConnectionFailure(ex))
        {
            // The client is gone; there is nobody left to tell.
            ProxyLog.ClientConnectionEnded(_rt.Logger, _info, ExchangePhase.ClientResponse, ex.Message);
        }
    }

    private static string DescribeForClient(HttpRequest request, ExchangeError error) =>
        error.Phase == ExchangePhase.Addon
            ? error.Message
            : $"{request.Host}:{request.Port.ToString(CultureInfo.InvariantCulture)}: {error.Message} (phase: {PhaseName(error.Phase)})";

    private static string PhaseName(ExchangePhase phase) => phase switch
    {
        ExchangePhase.Dns => "dns",
        ExchangePhase.Connect => "connect",
        ExchangePhase.Tls => "tls",
        ExchangePhase.Request => "request",
        ExchangePhase.Response => "response",
        ExchangePhase.ClientRequest => "client request",
        ExchangePhase.ClientResponse => "client response",
        _ => "addon",
    };

    private static void AddConnectionField(HttpHeaders headers, Version clientVersion, bool keepAlive)
    {
        // RFC 9112 §9.3 and §9.6: say "close" when the proxy will close; an HTTP/1.0 client only keeps the
        // connection when told "keep-alive".
        if (!keepAlive)
        {
            headers.Set("Connection", "close");
        }
        else if (clientVersion == HttpVersion.Version10)
        {
            headers.Set("Connection", "keep-alive");
        }
    }

    private static string ViaValue(Version version) =>
        version == HttpVersion.Version10 ? "1.0 interpose" : "1.1 interpose";

    private static string FormatAuthority(string scheme, string host, int port)
    {
        var h = host.Contains(':', StringComparison.Ordinal) ? "[" + host + "]" : host;
        var defaultPort = scheme == "https" ? 443 : 80;
        return port == defaultPort ? h : h + ":" + port.ToString(CultureInfo.InvariantCulture);
    }

    private static bool SameAuthority(string? hostField, string scheme, string host, int port)
    {
        if (hostField is null)
        {
            return false;
        }

        var defaultPort = scheme == "https" ? 443 : 80;
        var h = hostField;
        var p = defaultPort;
        var colon = h.LastIndexOf(':');
        if (colon > 0 && h.IndexOf(']', colon) < 0 && int.TryParse(h.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
        {
            p = parsed;
            h = h[..colon];
        }

        h = h.Trim('[', ']');
        return p == port && string.Equals(h, host, StringComparison.OrdinalIgnoreCase);
    }

    private void LogFlow(HttpExchange exchange, long responseBytes)
    {
        var request = exchange.Request;
        if (!_rt.FlowLogger.IsEnabled(Microsoft.Extensions.Logging.LogLevel.Information))
        {
            return;
        }

        // Checked above: the arguments are only built when the flow log is on.
#pragma warning disable CA1873
        var url = request.Scheme + "://" + request.Authority + request.Path;
        if (exchange.Error is { } error)
        {
            FlowLog.Failed(_rt.FlowLogger, _info.ToString(), request.Method, url, error.Phase, error.Message);
        }
        else if (exchange.Response is { } response)
        {
            FlowLog.Exchange(_rt.FlowLogger, _info.ToString(), request.Method, url, response.StatusCode, FormatSize(responseBytes), exchange.Timings.Total.TotalMilliseconds);
        }
#pragma warning restore CA1873
    }

    private static string FormatSize(long bytes) => bytes switch
    {
        < 1024 => bytes.ToString(CultureInfo.InvariantCulture) + "b",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + "k",
        _ => (bytes / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture) + "m",
    };
}

/// <summary>The origin closed a (reused) connection without sending a byte of response.</summary>
internal sealed class EmptyResponseException() : IOException("the origin closed the connection without responding");

/// <summary>A wait of the exchange timed out in <see cref="Phase"/>.</summary>
internal sealed class ExchangeTimeoutException(ExchangePhase phase, Exception inner) : Exception("timeout in " + phase, inner)
{
    public ExchangePhase Phase { get; } = phase;
}
