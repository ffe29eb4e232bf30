using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Text;
using Interpose.Core.Http;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>
/// HTTP/1.1 on the client's side of a connection (plain, or inside a CONNECT tunnel): reads request heads one at a
/// time, resolves where each goes, runs it through the <see cref="ExchangePipeline"/> and renders the pipeline's
/// answers as HTTP/1.1 bytes (<see cref="IClientSide"/>). Outside a tunnel each head passes the proxy front end first,
/// which may turn the connection into a tunnel (CONNECT).
/// </summary>
internal sealed partial class Http1ServerConnection : IClientSide, IDisposable
{
    /// <summary>A request body left unread by a synthetic answer is drained up to 1 MiB to keep the connection; beyond, it closes.</summary>
    private const long MaxDrainBytes = 1024 * 1024;

    /// <summary>
    /// A response body up to 8 KiB that arrived with its head is sent in the same write: head and body then fit in one
    /// TLS record (16 KiB of plaintext, RFC 8446 §5.1).
    /// </summary>
    private const long MaxCoalescedBodyBytes = 8 * 1024;

    private static readonly byte[] Continue100 = "HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray();

    private readonly ClientFlow _flow;
    private readonly ProxyRuntime _rt;
    private readonly Transport _client;
    private readonly TunnelTarget? _tunnel;
    private readonly HttpProxyFrontend? _frontend;
    private readonly ExchangePipeline _pipeline;
    private readonly ScratchBuffer _scratch;
    private readonly ScratchBuffer _bodyScratch;
    private readonly ChunkedDecoder _requestDecoder;

    // Resumable head scan: a peer sending one byte per packet costs linear, not quadratic, parsing.
    private Http1HeadScan _requestScan;

    // The exchange in flight's client version (one at a time on HTTP/1.1) and whether its response started.
    private Version _clientVersion = HttpVersion.Version11;
    private bool _responseStarted;

    // Whether the exchange in flight declared a request body not yet read to its end: a close then lingers.
    private volatile bool _requestBodyUnread;

    // HTTP/1.1 exchanges numbered as HTTP/2 client streams are (odd, rising), as mitmproxy numbers them.
    private int _nextStreamId = 1;

    /// <param name="flow">The client connection.</param>
    /// <param name="tunnel">The CONNECT tunnel this connection serves, or null for the proxy's own connection.</param>
    /// <param name="frontend">Outside a tunnel: admits each request head and opens tunnels.</param>
    public Http1ServerConnection(ClientFlow flow, TunnelTarget? tunnel, HttpProxyFrontend? frontend)
    {
        _flow = flow;
        _rt = flow.Runtime;
        _client = flow.Client;
        _tunnel = tunnel;
        _frontend = frontend;
        _requestDecoder = new ChunkedDecoder(_rt.Options.Limits);
        _scratch = flow.HeadScratch;
        _bodyScratch = flow.BodyScratch;
        // One exchange at a time: its response-head wait shares the connection's timer with the request-head waits.
        _pipeline = new ExchangePipeline(flow, this, _scratch, flow.Deadline);
        flow.CountServerConnection(+1);
    }

    public ClientConnection Info => _flow.Info;

    public bool ResponseStarted => _responseStarted;

    /// <summary>One exchange at a time: the phase is the connection's (its end is logged with it).</summary>
    public ExchangePhase Phase
    {
        get => _flow.Phase;
        set => _flow.Phase = value;
    }

    /// <summary>
    /// Serves requests until the connection closes or must close, or (outside a tunnel) until a CONNECT was admitted.
    /// </summary>
    /// <returns>The admitted CONNECT's head, for the tunnel layer to answer; null when the connection is done.</returns>
    public async Task<HttpRequestHead?> ServeAsync()
    {
        while (true)
        {
            var head = await ReadRequestHeadAsync();
            if (head is null)
            {
                return null;
            }

            if (_frontend is not null && !await _frontend.AdmitAsync(head, this))
            {
                // Refused (407, 403) with its body, if any, unread.
                if (DeclaresBody(head))
                {
                    await LingerAsync();
                }

                return null;
            }

            if (_frontend is not null && head.Method == "CONNECT")
            {
                // The tunnel takes the connection once this one is disposed (HttpProxyFrontend.RunAsync).
                return head;
            }

            if (await TryUpgradeToH2cAsync(head))
            {
                return null;
            }

            var keepAlive = await HandleRequestAsync(head);
            if (!keepAlive && _requestBodyUnread && _responseStarted)
            {
                // Answered without reading the whole body (a hook's answer to a request waiting for 100-continue, a
                // drain over its limit, a failure): the rest may be in the socket's buffer or still on its way.
                await LingerAsync();
            }

            if (!keepAlive || _rt.Draining.IsCancellationRequested)
            {
                return null;
            }
        }
    }

    /// <summary>
    /// The close RFC 9112 §9.6 asks of a server that answered before reading the whole request: "close the connection in
    /// stages", by <see cref="LingeringClose"/>'s rule (the proxy's 503 refusals follow it too), then close (the session
    /// does). The proxy stopping ends it at once.
    /// </summary>
    /// <remarks>
    /// No TLS close_notify: the ordinary close sends none either, and it could wait on a client that does not read.
    /// </remarks>
    private async ValueTask LingerAsync()
    {
        if (_client.Socket is not { } socket)
        {
            return;
        }

        var scope = _flow.Deadline;
        scope.Arm(LingeringClose.Timeout, _rt.Draining);
        try
        {
            await LingeringClose.DiscardAsync(socket, scope.Token);
        }
        catch (Exception ex) when (ClientSession.IsConnectionFailure(ex))
        {
            // The client reset or left, the linger ran out, or the proxy is stopping: nothing more to wait for.
        }
        finally
        {
            scope.Disarm();
        }
    }

    /// <summary>Whether a request head announces a body (or frames it so badly that what follows is unknown).</summary>
    private static bool DeclaresBody(HttpRequestHead head)
    {
        try
        {
            return new ReceivedRequest(MessageFraming.ForRequest(head), head.Version, KeepAlive: false, Upgrade: false, Tunnel: null).BodyPending;
        }
        catch (HttpProtocolException)
        {
            return true;
        }
    }

    /// <summary>
    /// Reads the next request head. The first one on a connection has the request-head timeout from accept; a later one
    /// has the idle keep-alive timeout until its first byte, then the request-head timeout (slowloris). Returns null when
    /// the connection should close (clean close, timeout, malformed head).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<HttpRequestHead?> ReadRequestHeadAsync()
    {
        _flow.Phase = ExchangePhase.ClientRequest;
        var input = _client.Input;
        var scope = _flow.Deadline;

        // A connection that has not sent its first request is not idle between requests: nginx's client_header_timeout
        // also counts from accept. Otherwise a client that connects and says nothing would hold the connection for the
        // (much longer) keep-alive timeout.
        var first = !_flow.FirstHeadReceived;
        scope.Arm(first ? _rt.Options.Timeouts.RequestHead : _rt.Options.Timeouts.IdleKeepAlive, _rt.Draining);
        var started = false;
        _requestScan.Reset();
        var afterExchange = _nextStreamId > 1;
        if (!first)
        {
            // Between requests the connection holds no scratch array and no TLS memory BIO buffer: the next request
            // rents and allocates them again. Nothing reads or writes the client's stream at this point (the exchange
            // before is over, the read below has not started).
            _flow.ReleaseScratch();
            _client.ReleaseIdleTlsBuffers(_rt.Options.TimeProvider, afterExchange);
        }

        try
        {
            while (true)
            {
                var pending = input.ReadAsync(scope.Token);
                if (afterExchange && !started && !pending.IsCompleted)
                {
                    LogIdle();
                }

                var result = await pending;
                var buffer = result.Buffer;
                if (!started && !buffer.IsEmpty)
                {
                    started = true;
                    if (!first)
                    {
                        scope.Reset(_rt.Options.Timeouts.RequestHead);
                    }
                }

                HttpRequestHead? head;
                SequencePosition consumed;
                try
                {
                    if (Http1Parser.TryParseRequestHead(buffer, _rt.Options.Limits, ref _requestScan, out head, out consumed))
                    {
                        input.AdvanceTo(consumed);
                        if (first)
                        {
                            _flow.OnFirstHeadReceived();
                        }

                        if (head.Method != "CONNECT")
                        {
                            // A request is in hand (a CONNECT only opens the tunnel its requests come through): the
                            // connection is set up, its later reads (the body, the next request) stay inline.
                            _client.EndSetUp();
                        }

                        return head;
                    }
                }
                catch (HttpProtocolException ex)
                {
                    input.AdvanceTo(buffer.Start);
                    ProxyLog.BadRequest(_rt.Logger, Info, ex.Message, ex.StatusCode);
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
                ProxyLog.RequestHeadTimeout(_rt.Logger, Info);
                await SendErrorAsync(408, "request head not received in time");
            }
            else if (first)
            {
                // Nothing was sent, so nothing is answered (RFC 9112 §9.5: a server may close an inactive connection);
                // this is as common from browsers' speculative pre-connections as from attackers, so only at Debug.
                ProxyLog.ClientConnectionEnded(_rt.Logger, Info, _flow.Phase, "no request within the request-head timeout");
            }

            return null;
        }
        catch (OperationCanceledException) when (_rt.Draining.IsCancellationRequested)
        {
            if (started)
            {
                // Part of a head came before the proxy began to stop: the client is told, rather than left with a
                // silent close (RFC 9110 §15.6.4: 503, the server is unable to handle the request for now).
                await SendErrorAsync(503, "the proxy is stopping; the request was not complete");
            }

            return null;
        }
        finally
        {
            scope.Disarm();
        }
    }

    /// <summary>What the connection holds while its read waits for the client (a zero-byte read), at Trace.</summary>
    private void LogIdle()
    {
        if (_rt.Logger.IsEnabled(LogLevel.Trace))
        {
            var tlsReleased = _client.Stream is SslStream ssl && TlsBufferRelease.IsEnabled(ssl);
            ProxyLog.ClientIdle(_rt.Logger, Info, _client.Buffers.Rented, tlsReleased, _client.TlsBioBytes, _flow.ServerConnections);
        }
    }

    /// <summary>Step 1 of an exchange: where the request goes and how its body is framed; then the pipeline.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> HandleRequestAsync(HttpRequestHead head)
    {
        var startedAt = _rt.Time.GetTimestamp();
        _responseStarted = false;
        _flow.Phase = ExchangePhase.ClientRequest;

        RequestTarget target;
        BodyFraming framing;
        try
        {
            target = RequestTargetParser.Parse(head.Method, head.Target);
            framing = MessageFraming.ForRequest(head);
        }
        catch (HttpProtocolException ex)
        {
            // RFC 9112 §6.3: a body whose length cannot be determined: whatever follows the head is unread.
            _requestBodyUnread = true;
            ProxyLog.BadRequest(_rt.Logger, Info, ex.Message, ex.StatusCode);
            await SendErrorAsync(ex.StatusCode, "bad request: " + ex.Message);
            return false;
        }

        string scheme, host, path;
        int port;
        if (target.Form == RequestTargetForm.Absolute)
        {
            (scheme, host, port, path) = (target.Scheme!, target.Host!, target.Port, target.PathAndQuery);

            // RFC 9110 §7.2: a proxy receiving absolute-form MUST replace the Host field with the target's authority.
            if (!Authority.Matches(head.Headers.Get("Host"), scheme, host, port))
            {
                head.Headers.Set("Host", Authority.Format(scheme, host, port));
            }
        }
        else if (_tunnel is not null && target.Form is RequestTargetForm.Origin or RequestTargetForm.Asterisk)
        {
            (scheme, host, port, path) = (_tunnel.Scheme, _tunnel.Host, _tunnel.Port, head.Target);
        }
        else
        {
            await SendErrorAsync(400, "Interpose is a proxy: requests need an absolute URL (http://host/path) or a CONNECT tunnel");
            return false;
        }

        _clientVersion = head.Version;
        var received = new ReceivedRequest(framing, head.Version, HopByHop.KeepAlive(head.Version, head.Headers), HopByHop.IsUpgradeRequest(head), _tunnel);
        _requestBodyUnread = received.BodyPending;
        var request = new HttpRequest(head.Method, scheme, host, port, path, head.Version, head.Headers);
        var exchange = new HttpExchange(_rt.NextExchangeId(), Info, request, _rt.Time, _nextStreamId);
        _nextStreamId += 2;
        exchange.Timings.RequestStarted = startedAt;
        return await _pipeline.RunAsync(exchange, received, _rt.Aborted);
    }

    // ───────────────────────────── the client side of the exchange ─────────────────────────────

    public ValueTask SendContinueAsync(CancellationToken cancellationToken) =>
        _client.Stream.WriteAsync(Continue100, cancellationToken);

    // RFC 9110 §10.1.1: a client that sent Expect: 100-continue may wait for the origin's 100 before its body; that
    // wait is the origin's, so the rate's clock starts with the first body byte. (When the proxy buffers the body it
    // answers the expectation itself and removes the field: the client's clock runs at once.)
    public ValueTask<long> ReadRequestBodyAsync(BodyFraming framing, IBodySink sink, bool raw, Transport? destination, HttpRequest request, CancellationToken cancellationToken) =>
        RelayRequestBodyAsync(request, framing, sink, raw, destination, fromFirstByte: request.Headers.Contains("Expect"), cancellationToken);

    public async ValueTask<bool> DrainRequestBodyAsync(BodyFraming framing, HttpRequest request, CancellationToken cancellationToken)
    {
        if (framing.Kind == BodyKind.ContentLength && framing.ContentLength > MaxDrainBytes)
        {
            return false;
        }

        var sink = new BufferingSink(MaxDrainBytes);
        try
        {
            await RelayRequestBodyAsync(request, framing, sink, raw: false, destination: null, fromFirstByte: request.Headers.Contains("Expect"), cancellationToken);
            return true;
        }
        catch (BodyTooLargeException)
        {
            return false;
        }
    }

    public async ValueTask SendInterimAsync(HttpResponseHead head, CancellationToken cancellationToken)
    {
        _scratch.ResetWrittenCount();
        Http1Parser.WriteResponseHead(head, _scratch);
        await _client.Stream.WriteAsync(_scratch.WrittenMemory, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<long> SendWholeResponseAsync(HttpResponse response, HttpRequest request, bool keepAlive, CancellationToken cancellationToken)
    {
        var headers = response.Headers;
        var bodyAllowed = ForwardingRules.PrepareWholeResponse(headers, request.Method, response.StatusCode, response.Body.Length);
        // RFC 9112 §7.1.2: trailer fields travel only in chunked framing. A whole response that has some (an origin's
        // chunked response a hook buffered, a server-replayed one, an addon's) goes chunked to an HTTP/1.1 client, so
        // they reach it as they would have without the proxy; an HTTP/1.0 client has no chunked framing (RFC 9112 §7),
        // so it gets the Content-Length and no trailers.
        var trailers = bodyAllowed && response.Trailers is { Count: > 0 } t && _clientVersion != HttpVersion.Version10 ? t : null;
        if (trailers is not null)
        {
            headers.Remove("Content-Length");
            headers.Set("Transfer-Encoding", "chunked");
        }

        ForwardingRules.SetConnection(headers, _clientVersion, keepAlive);
        _responseStarted = true;
        _scratch.ResetWrittenCount();
        Http1Parser.WriteResponseHead(HttpVersion.Version11, response.StatusCode, response.ReasonPhrase, headers, _scratch);
        var body = bodyAllowed ? response.Body : ReadOnlyMemory<byte>.Empty;
        if (trailers is not null && !body.IsEmpty)
        {
            ChunkedEncoder.WriteChunkHeader(body.Length, _scratch);
        }

        var rate = StartResponseRate(cancellationToken, out var clientToken);
        try
        {
            if (body.Length <= _scratch.FreeCapacity)
            {
                _scratch.Write(body.Span);
            }
            else
            {
                await WriteToClientAsync(_scratch.WrittenMemory, rate, clientToken);
                await WriteToClientAsync(body, rate, clientToken);
                _scratch.ResetWrittenCount();
            }

            if (trailers is not null)
            {
                if (!body.IsEmpty)
                {
                    ChunkedEncoder.WriteChunkTerminator(_scratch);
                }

                ChunkedEncoder.WriteLastChunk(trailers, _scratch);
            }

            if (_scratch.WrittenCount > 0)
            {
                await WriteToClientAsync(_scratch.WrittenMemory, rate, clientToken);
            }
        }
        catch (OperationCanceledException ex) when (rate is { Violated: true })
        {
            throw ClientTooSlow(rate, request, ExchangePhase.ClientResponse, ex);
        }
        finally
        {
            rate?.Stop();
        }

        return body.Length;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<(long Bytes, bool KeepAlive)> StreamResponseAsync(
        UpstreamConnection upstream, HttpRequest request, HttpResponse response, BodyFraming framing, bool keepAlive, CancellationToken cancellationToken)
    {
        var hasBody = framing.Kind != BodyKind.None;
        var transform = hasBody ? response.Transform : null;
        var plan = ResponseRelayPlan.For(framing, _clientVersion, transform is not null);
        if (plan.CloseDelimited)
        {
            keepAlive = false;
        }

        var headers = response.Headers;
        plan.PrepareHeaders(headers);
        ForwardingRules.SetConnection(headers, _clientVersion, keepAlive);
        if (_rt.Options.AddVia)
        {
            headers.Add("Via", ForwardingRules.Via(response.Version));
        }

        _responseStarted = true;
        _scratch.ResetWrittenCount();
        Http1Parser.WriteResponseHead(response.Version, response.StatusCode, response.ReasonPhrase, headers, _scratch);

        // From the head on, the client is measured while the proxy waits for writes to it (not for the origin).
        var rate = StartResponseRate(cancellationToken, out var clientToken);
        try
        {
            return await SendStreamedResponseAsync(upstream, response, framing, plan, transform, keepAlive, rate, clientToken);
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
        UpstreamConnection upstream, HttpResponse response, BodyFraming framing, ResponseRelayPlan plan, IBodyTransform? transform, bool keepAlive, DataRateMonitor? rate, CancellationToken cancellationToken)
    {
        // A small body that already arrived with the head leaves in the same write: one TLS record and one syscall
        // instead of two, which is most of an API response's cost. Observers (a recorder) see it from the copy after
        // the write, as the relay shows them each piece after writing it. An HTTP/2 origin's stream must have ended
        // without trailers: else the relay waits for its end and records them (RFC 9113 §8.1; the Content-Length head
        // leaves no place to send them).
        var input = upstream.Transport.Input;
        if (plan.Raw && framing.Kind == BodyKind.ContentLength && framing.ContentLength <= MaxCoalescedBodyBytes
            && upstream.Http2 is not { EndedWithoutTrailers: false } && input.TryRead(out var ready))
        {
            if (ready.Buffer.Length >= framing.ContentLength)
            {
                var body = ready.Buffer.Slice(0, framing.ContentLength);
                var headLength = _scratch.WrittenCount;
                foreach (var segment in body)
                {
                    _scratch.Write(segment.Span);
                }

                input.AdvanceTo(body.End);
                await WriteToClientAsync(_scratch.WrittenMemory, rate, cancellationToken);
                if (response.Observers is { Count: > 0 } observers)
                {
                    _flow.Phase = ExchangePhase.Response;
                    await BodyReader.ObserveWholeAsync(observers, _scratch.WrittenMemory[headLength..], cancellationToken);
                }

                return (framing.ContentLength, keepAlive);
            }

            input.AdvanceTo(ready.Buffer.Start);
        }

        await WriteToClientAsync(_scratch.WrittenMemory, rate, cancellationToken);
        if (framing.Kind == BodyKind.None)
        {
            return (0, keepAlive);
        }

        IBodySink sink = plan.Raw ? new StreamSink(_client.Stream) : new ReframingSink(_client.Stream, plan.Rechunk, transform, _bodyScratch);
        _flow.Phase = ExchangePhase.Response;
        var bytes = await BodyReader.RelayAsync(input, framing, upstream.ResponseDecoder, sink, new BodyRelayOptions(plan.Raw, _client, WriteRate: rate, Message: response, Http2Origin: upstream.Http2), cancellationToken);
        return (bytes, keepAlive);
    }

    public async ValueTask<(long Up, long Down)> RelayUpgradeAsync(HttpResponseHead head, UpstreamConnection upstream, IRelayTap? tap, CancellationToken cancellationToken)
    {
        _responseStarted = true;
        _scratch.ResetWrittenCount();
        Http1Parser.WriteResponseHead(head, _scratch);
        await _client.Stream.WriteAsync(_scratch.WrittenMemory, cancellationToken);
        return await TunnelRelay.RunAsync(_client, upstream.Transport, cancellationToken, tap: tap);
    }

    public ValueTask SendErrorAsync(int status, string message)
    {
        _responseStarted = true;
        return SendErrorAsync(_flow, status, message);
    }

    /// <summary>
    /// Answers <paramref name="status"/> with a short text body and <c>Connection: close</c> on the client's connection;
    /// also used by the tunnel layer for a CONNECT it cannot open, after the connection that read it is gone.
    /// </summary>
    public static async ValueTask SendErrorAsync(ClientFlow flow, int status, string message)
    {
        var rt = flow.Runtime;
        try
        {
            var body = Encoding.UTF8.GetBytes("Interpose: " + message + "\n");
            var head = string.Create(CultureInfo.InvariantCulture,
                $"HTTP/1.1 {status} {ReasonPhrases.For(status)}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
            var scratch = flow.HeadScratch;
            scratch.ResetWrittenCount();
            Encoding.ASCII.GetBytes(head, scratch);
            scratch.Write(body);
            await flow.Client.Stream.WriteAsync(scratch.WrittenMemory, rt.Aborted);
        }
        catch (Exception ex) when (ClientSession.IsConnectionFailure(ex))
        {
            // The client is gone; there is nobody left to tell.
            ProxyLog.ClientConnectionEnded(rt.Logger, flow.Info, ExchangePhase.ClientResponse, ex.Message);
        }
    }

    /// <summary>Sends a prepared answer (407, 403, the CONNECT 200) as it is.</summary>
    public async ValueTask SendFixedAsync(ReadOnlyMemory<byte> response)
    {
        try
        {
            _responseStarted = true;
            await _client.Stream.WriteAsync(response, _rt.Aborted);
        }
        catch (Exception ex) when (ClientSession.IsConnectionFailure(ex))
        {
            ProxyLog.ClientConnectionEnded(_rt.Logger, Info, ExchangePhase.ClientResponse, ex.Message);
        }
    }

    public void Dispose()
    {
        // The monitors keep a registration on the proxy's lifetime token between bodies: undisposed, that
        // registration kept every closed connection's monitor, timer and token source until the proxy stopped.
        _requestBodyRate?.Dispose();
        _responseRate?.Dispose();
        _pipeline.Dispose();
        _flow.CountServerConnection(-1);
    }
}
