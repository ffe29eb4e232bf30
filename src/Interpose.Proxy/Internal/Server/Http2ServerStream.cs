using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Interpose.Core.Http;
using Interpose.Core.Http2;

namespace Interpose.Proxy.Internal;

/// <summary>
/// One HTTP/2 stream on the client's side (RFC 9113 §8.1): the request arrived as HEADERS and DATA frames and the
/// response leaves as HEADERS and DATA frames, while the <see cref="ExchangePipeline"/> runs the exchange on this
/// stream's own task exactly as it does for HTTP/1.1 (<see cref="IClientSide"/>).
/// </summary>
/// <remarks>
/// The request body goes from the reader loop into a pipe bounded by the stream's receive window; its credit returns
/// to the client (WINDOW_UPDATE) only once the pipeline consumed it, so a slow origin back-pressures this stream alone.
/// A stream object is pooled by its connection (as Kestrel pools its Http2Stream): its body pipe, exchange pipeline
/// (with its response-head timer), cancellation source, scratch buffer, field list and body sink serve the next
/// stream too. The exchange's public objects (HttpExchange, HttpRequest, HttpResponse, their headers) are never
/// pooled: hooks may keep them after the exchange. The connection recycles a stream only on its reader loop, after the
/// stream's task has finished and left the connection's stream table, so no frame can reach a recycled stream.
/// </remarks>
internal sealed class Http2ServerStream : IClientSide, IHttp2SendingStream, IDisposable
{
    private readonly Http2ServerConnection _conn;
    private readonly ProxyRuntime _rt;
    private readonly Pipe _body;
    private readonly ScratchBuffer _scratch = new(null, 256); // a stream's own; pooled with the stream
    private readonly List<HttpHeader> _responseFields = [];
    private readonly DataFrameSink _sink;
    private readonly ExchangePipeline _pipeline;
    private readonly FlowWindow _receiveWindow;
    private readonly int _receiveWindowSize;
    private readonly ReceiveCredit _receiveCredit;
    private readonly CancellationTokenSource _cts;

    // The minimum data rates of this stream (ProxyTimeouts.MinRequestBodyDataRate / MinResponseDataRate), made on first
    // use and pooled with the stream: Kestrel measures them per HTTP/2 stream, so one slow stream is reset alone.
    private DataRateMonitor? _requestBodyRate;
    private DataRateMonitor? _responseRate;
    private bool _tooSlow;

    // While a response body is sent: its rate monitor (null when off) and the request, for the log line.
    private DataRateMonitor? _activeResponseRate;
    private HttpRequest? _rateRequest;

    // The request as framed by the client: the Content-Length it declared (RFC 9113 §8.1.1 checks it) and what came.
    private long? _declaredLength;
    private long _receivedLength;
    private HttpHeaders? _requestTrailers;
    private bool _bodyCompleted;

    // Request DATA octets handed to the pipe whose connection credit has not been returned yet (under FlowLock).
    private long _unreturned;

    // Body octets of an h2c upgrade request not read yet: they came before HTTP/2, took no window and return no credit.
    private long _bodyBeforeHttp2;
    private bool _done;

    private volatile bool _requestEnded;
    private volatile bool _reset;
    private bool _headersSent;
    private bool _responseEnded;

    /// <summary>A stream object for the connection's pool; <see cref="Open"/> makes it a stream.</summary>
    public Http2ServerStream(Http2ServerConnection connection, PipeOptions pipe)
    {
        _conn = connection;
        _rt = connection.Runtime;
        _body = new Pipe(pipe);
        _cts = CancellationTokenSource.CreateLinkedTokenSource(connection.Closed);
        _sink = new DataFrameSink(this);
        _receiveWindowSize = _rt.Options.Http2StreamWindowSize;
        _receiveWindow = new FlowWindow(0, _receiveWindowSize);
        _receiveCredit = new ReceiveCredit(_receiveWindow, _receiveWindowSize / 2);
        SendWindow = new Http2StreamSendWindow(new FlowWindow(0, 0));
        _pipeline = new ExchangePipeline(connection.Flow, this, _scratch);
    }

    public int Id { get; private set; }

    /// <summary>Our send window on this stream (under the connection's FlowLock).</summary>
    public Http2StreamSendWindow SendWindow { get; }

    /// <summary>Makes this (new or recycled) object stream <paramref name="id"/>; the reader loop calls it.</summary>
    public void Open(int id, int initialSendWindow, bool endStream)
    {
        Id = id;
        SendWindow.Reset();
        SendWindow.Window.Reset(id, initialSendWindow);
        _receiveWindow.Reset(id, _receiveWindowSize);
        _receiveCredit.Reset();
        if (endStream)
        {
            _requestEnded = true;
            CompleteBody(null);
        }
    }

    /// <summary>
    /// Makes this object stream 1 of a connection upgraded from HTTP/1.1 (RFC 7540 §3.2): half-closed (remote) from the
    /// start, its body the one the upgrade request carried, whole.
    /// </summary>
    public void OpenUpgraded(int initialSendWindow, byte[] body)
    {
        Open(1, initialSendWindow, endStream: false);
        _receivedLength = body.Length;
        _bodyBeforeHttp2 = body.Length;
        _body.Writer.Write(body);
        _requestEnded = true;

        // Completing the writer commits what it wrote: the pipeline reads the body, then its end.
        CompleteBody(null);
    }

    /// <summary>
    /// Readies a finished stream for reuse (on the reader loop, once its task ended and it left the stream table);
    /// false when it cannot be reused (its cancellation source was cancelled), and it was disposed.
    /// </summary>
    public bool TryRecycle()
    {
        // The request body's writer may still be open (a response that ended before the request, RFC 9113 §8.1); the
        // reader side was completed when the exchange ended.
        CompleteBody(null);
        _body.Reset();
        _declaredLength = null;
        _receivedLength = 0;
        _requestTrailers = null;
        _bodyCompleted = false;
        _unreturned = 0;
        _bodyBeforeHttp2 = 0;
        _done = false;
        _requestEnded = false;
        _reset = false;
        _headersSent = false;
        _responseEnded = false;
        _tooSlow = false;
        Phase = default;
        Completion = Task.CompletedTask;
        if (_cts.TryReset())
        {
            return true;
        }

        Dispose();
        return false;
    }

    /// <summary>Releases what a pooled stream holds (the connection ended or its pool is full).</summary>
    public void Dispose()
    {
        _requestBodyRate?.Dispose();
        _responseRate?.Dispose();
        _pipeline.Dispose();
        _cts.Dispose();
    }

    /// <summary>END_STREAM came from the client (or the stream was reset): no more DATA is expected.</summary>
    public bool RequestEnded => _requestEnded;

    /// <summary>Ends when the stream's exchange has ended.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    public ClientConnection Info => _conn.Flow.Info;

    public bool ResponseStarted => _headersSent;

    /// <summary>This stream's exchange's phase: streams of one connection run concurrently, each in its own.</summary>
    public ExchangePhase Phase { get; set; }

    /// <summary>Starts the exchange on its own task (hooks of one connection may run concurrently).</summary>
    public void Start(Http2RequestFields request)
    {
        // Host comes from :authority and cookie crumbs are joined (RFC 9113 §8.3.1, §8.2.3).
        var head = Http2HeaderRules.ToHttp1Request(request);

        // RFC 9113 §8.1.1: a Content-Length that does not match the DATA makes the request malformed; read it now, on
        // the reader loop, before any DATA of the stream is routed. By the parser whose length the HTTP/1.1 origin is
        // sent (FixRelayedFraming), so that the two can never differ: a list such as "5, 5" is 5 for both (RFC 9110
        // §8.6), where a parse of its own that failed on it let every DATA octet through under "Content-Length: 5".
        BodyFraming? framing = null;
        HttpProtocolException? framingError = null;
        try
        {
            framing = MessageFraming.ForRequest(head);
            if (framing.Value.Kind == BodyKind.ContentLength)
            {
                _declaredLength = framing.Value.ContentLength;
            }
        }
        catch (HttpProtocolException ex)
        {
            // Answered on the stream's task (400); no DATA of the stream is relayed.
            framingError = ex;
        }

        Completion = RunAsync(head, framing, framingError);
    }

    private async Task RunAsync(HttpRequestHead head, BodyFraming? clientFraming, HttpProtocolException? framingError)
    {
        var startedAt = _rt.Time.GetTimestamp();

        // Off the reader loop at once: hooks and the origin run on the stream's own task. Task.Yield queues this state
        // machine itself to the thread pool, where Task.Run cost a closure, a delegate and an unwrapping task per stream.
        await Task.Yield();
        try
        {
            var tunnel = _conn.Tunnel;
            if (clientFraming is not { } framing)
            {
                ProxyLog.BadRequest(_rt.Logger, Info, framingError!.Message, framingError.StatusCode);
                await SendErrorAsync(framingError.StatusCode, "bad request: " + framingError.Message);
                return;
            }

            if (_requestEnded && _receivedLength == 0 && framing.Kind == BodyKind.ContentLength && framing.ContentLength > 0)
            {
                await _conn.ResetStreamAsync(Id, Http2ErrorCode.ProtocolError, "END_STREAM with the head but a Content-Length above 0 (RFC 9113 §8.1.1)");
                _reset = true;
                return;
            }

            // Without a Content-Length the body runs to END_STREAM: to an HTTP/1.1 origin that is chunked (RFC 9112 §7).
            if (framing.Kind == BodyKind.None && !(_requestEnded && _receivedLength == 0))
            {
                framing = new BodyFraming(BodyKind.Chunked, 0);
            }

            var received = new ReceivedRequest(framing, HttpVersion.Version20, KeepAlive: true, Upgrade: false, tunnel);
            var request = new HttpRequest(head.Method, tunnel.Scheme, tunnel.Host, tunnel.Port, head.Target, HttpVersion.Version20, head.Headers);
            var exchange = new HttpExchange(_rt.NextExchangeId(), Info, request, _rt.Time, Id);
            exchange.Timings.RequestStarted = startedAt;
            await _pipeline.RunAsync(exchange, received, StreamToken);
            if (!_responseEnded && !_reset)
            {
                // Killed by a hook, or failed after the response began: the stream ends without a complete response.
                await _conn.ResetStreamAsync(Id, exchange.IsKilled ? Http2ErrorCode.Cancel : Http2ErrorCode.InternalError, exchange.IsKilled ? "killed by a hook" : "the exchange failed after the response began");
            }
            else if (!_requestEnded && !_reset && _tooSlow)
            {
                // The client sent the request body below the minimum rate (answered 408 if nothing was sent yet): the
                // rest is not wanted. CANCEL, "the stream is no longer needed" (RFC 9113 §7), as for a zero-window
                // stall; not ENHANCE_YOUR_CALM, which says the peer generates excessive load, where this one sends too little.
                await _conn.ResetStreamAsync(Id, Http2ErrorCode.Cancel, "the request body came below the minimum data rate");
            }
            else if (!_requestEnded && !_reset)
            {
                // RFC 9113 §8.1: "A server can send a complete response prior to the client sending an entire request
                // ... the server MAY request that the client abort transmission of a request without error by sending
                // a RST_STREAM with an error code of NO_ERROR after sending a complete response".
                await _conn.ResetStreamAsync(Id, Http2ErrorCode.NoError, "response complete before the request body");
            }
        }
        catch (Exception ex) when (ClientSession.IsConnectionFailure(ex) || ex is Http2ConnectionException or HttpProtocolException or NotSupportedException)
        {
            ProxyLog.ClientConnectionEnded(_rt.Logger, Info, ExchangePhase.ClientResponse, ex.Message);
        }
        catch (Exception ex)
        {
            // A bug: its stack logged, and the client not left waiting on a stream nobody serves any more (RFC 9113 §5.4.2:
            // a stream error is RST_STREAM; INTERNAL_ERROR, §7). Nothing observes this task's fault otherwise.
            ProxyLog.Http2StreamCrashed(_rt.Logger, Info, Id, ex);
            await ResetAfterCrashAsync();
        }
        finally
        {
            long unreturned;
            lock (_conn.FlowLock)
            {
                _done = true;
                unreturned = _unreturned;
                _unreturned = 0;
            }

            _conn.OnStreamDone(this);
            await _body.Reader.CompleteAsync();
            if (unreturned > 0)
            {
                // Body bytes nobody read: their connection credit goes back, or the other streams would starve.
                try
                {
                    await _conn.ReturnConnectionCreditAsync((int)unreturned);
                }
                catch (Exception ex) when (ClientSession.IsConnectionFailure(ex))
                {
                    // The connection is gone with its windows.
                }
            }

            // The last use of this object by its task: the reader loop may recycle it from here on.
            _conn.OnStreamFinished(this);
        }
    }

    /// <summary>RST_STREAM INTERNAL_ERROR after a bug ended the stream's task, unless the stream is already reset or
    /// closed both ways.</summary>
    private async ValueTask ResetAfterCrashAsync()
    {
        if (_reset || (_responseEnded && _requestEnded))
        {
            return;
        }

        try
        {
            _reset = true;
            await _conn.ResetStreamAsync(Id, Http2ErrorCode.InternalError, "internal error");
        }
        catch (Exception ex) when (ClientSession.IsConnectionFailure(ex) || ex is Http2ConnectionException)
        {
            // The connection is gone or failing: its close ends the stream.
        }
    }

    // ───────────────────────────── from the reader loop ─────────────────────────────

    /// <summary>A DATA frame for this stream (the reader loop); returns the stream credit of its padding, to send now.</summary>
    /// <exception cref="Http2StreamException">FLOW_CONTROL_ERROR beyond the window; PROTOCOL_ERROR when the DATA
    /// exceed the declared Content-Length (RFC 9113 §8.1.1).</exception>
    public async ValueTask<bool> OnDataAsync(ReadOnlySequence<byte> data, int frameLength, bool endStream)
    {
        bool done;
        lock (_conn.FlowLock)
        {
            // RFC 9113 §6.9.1: the whole frame counts against the stream window.
            _receiveWindow.Consume(frameLength);
            done = _done;
            if (!done)
            {
                _unreturned += data.Length;
            }
        }

        _receivedLength += data.Length;
        if (_declaredLength is { } declared && (_receivedLength > declared || (endStream && _receivedLength != declared)))
        {
            // RFC 9113 §8.1.1: "A request or response is also malformed if the value of a content-length header field
            // does not equal the sum of the DATA frame payload lengths".
            throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, $"{_receivedLength} octets of DATA for a Content-Length of {declared} (RFC 9113 §8.1.1).");
        }

        if (!done && !_bodyCompleted)
        {
            foreach (var segment in data)
            {
                _body.Writer.Write(segment.Span);
            }

            // No pause threshold: the window bounds what is buffered, so this completes at once.
            await _body.Writer.FlushAsync();
        }

        if (endStream)
        {
            _requestEnded = true;
            CompleteBody(null);
        }

        return done;
    }

    /// <summary>The stream credit of padding octets (never read by anyone): the increment to send now, or 0.</summary>
    public int ReturnPadding(int padding)
    {
        lock (_conn.FlowLock)
        {
            return _requestEnded ? 0 : _receiveCredit.OnConsumed(padding);
        }
    }

    /// <summary>The trailer section (HEADERS with END_STREAM after DATA) ended the request.</summary>
    public void OnRequestEnded(HttpHeaders trailers)
    {
        _requestTrailers = trailers.Count > 0 ? trailers : null;
        _requestEnded = true;
        if (_declaredLength is { } declared && _receivedLength != declared)
        {
            Abort(new HttpProtocolException($"{_receivedLength} octets of DATA for a Content-Length of {declared} (RFC 9113 §8.1.1)"));
            return;
        }

        CompleteBody(null);
    }

    /// <summary>The client reset the stream (RFC 9113 §6.4): its body ends in error and its writes stop.</summary>
    public void OnReset(Http2ErrorCode code)
    {
        _reset = true;
        Abort(new IOException($"the client reset stream {Id} ({code})"));
    }

    /// <summary>The client left the send window shut too long: the stream is reset with CANCEL and its exchange stops.</summary>
    public async ValueTask ResetForStallAsync()
    {
        _reset = true;
        await _conn.ResetStreamAsync(Id, Http2ErrorCode.Cancel, "zero-window stall");
        Abort(new IOException($"stream {Id} stalled on a zero window"));
    }

    /// <summary>The connection resets this stream itself (a stream error it found): the exchange, cancelled by
    /// <see cref="Abort"/>, must not send a reset of its own.</summary>
    public void AbortForReset(Exception error)
    {
        _reset = true;
        Abort(error);
    }

    /// <summary>Ends the request body in error and cancels the stream's sends.</summary>
    public void Abort(Exception error)
    {
        _requestEnded = true;
        CompleteBody(error);
        try
        {
            _ = _cts.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
            // The stream already finished.
        }

        lock (_conn.FlowLock)
        {
            SendWindow.Wake();
        }
    }

    private void CompleteBody(Exception? error)
    {
        if (_bodyCompleted)
        {
            return;
        }

        _bodyCompleted = true;
        _body.Writer.Complete(error);
    }

    // ───────────────────────────── the client side of the exchange ─────────────────────────────

    public ValueTask SendContinueAsync(CancellationToken cancellationToken) =>
        _conn.WriteHeadersAsync(Id, [new(":status", "100")], endStream: false, StreamToken);

    public async ValueTask<long> ReadRequestBodyAsync(BodyFraming framing, IBodySink sink, bool raw, Transport? destination, HttpRequest request, CancellationToken cancellationToken)
    {
        // Raw chunked is what the spec wrapper asks for when the body leaves as it came: the DATA are chunked here.
        var chunked = raw && framing.Kind == BodyKind.Chunked;
        var monitor = StartRate(ref _requestBodyRate, _rt.Options.Timeouts.MinRequestBodyDataRate, cancellationToken, fromFirstByte: request.Headers.Contains("Expect"));
        try
        {
            // A Content-Length body never relays more than its length: the origin is sent that length, and octets after it
            // would be a request of their own to an HTTP/1.1 origin (h2→h1 smuggling). OnDataAsync resets such a stream
            // before its DATA reach the pipe; this holds even if a length were ever read differently there.
            var limit = framing.Kind == BodyKind.ContentLength ? framing.ContentLength : long.MaxValue;
            return await RelayRequestBodyAsync(sink, chunked, limit, request, monitor, monitor?.Token ?? cancellationToken);
        }
        catch (OperationCanceledException ex) when (monitor is { Violated: true })
        {
            // Only this stream: the connection and its other streams go on (the 408 and the reset follow in RunAsync).
            _tooSlow = true;
            throw MinDataRateException.ClientTooSlow(_rt, Info, monitor, request, ExchangePhase.ClientRequest, ex);
        }
        finally
        {
            monitor?.Stop();
        }
    }

    /// <summary>Starts a minimum-rate monitor of this stream; null when the rate is off.</summary>
    private DataRateMonitor? StartRate(ref DataRateMonitor? monitor, MinDataRate? rate, CancellationToken parent, bool fromFirstByte = false)
    {
        if (rate is null)
        {
            return null;
        }

        monitor ??= new DataRateMonitor(_rt.Time);
        monitor.Start(rate, parent, fromFirstByte);
        return monitor;
    }

    /// <summary>The request body from the stream's pipe into <paramref name="sink"/>; a read that waits is the client's
    /// wait (its window has room: credit returns as the pipe is read), timed by <paramref name="rate"/>.</summary>
    /// <exception cref="HttpProtocolException">More octets came than <paramref name="limit"/>.</exception>
    private async ValueTask<long> RelayRequestBodyAsync(IBodySink sink, bool chunked, long limit, HttpRequest request, DataRateMonitor? rate, CancellationToken cancellationToken)
    {
        var observers = request.Observers;
        var reader = _body.Reader;
        long total = 0;
        while (true)
        {
            if (!reader.TryRead(out var result))
            {
                rate?.WaitStarted();
                result = await reader.ReadAsync(cancellationToken);
                rate?.WaitEnded();
            }

            var buffer = result.Buffer;
            rate?.Transferred(buffer.Length);
            if (buffer.Length > limit - total)
            {
                // RFC 9113 §8.1.1: DATA beyond the content-length make the request malformed; none of it is forwarded.
                reader.AdvanceTo(buffer.Start);
                throw new HttpProtocolException($"more than the Content-Length of {limit} octets of DATA (RFC 9113 §8.1.1)");
            }

            if (!buffer.IsEmpty)
            {
                if (chunked)
                {
                    _scratch.ResetWrittenCount();
                    ChunkedEncoder.WriteChunkHeader(buffer.Length, _scratch);
                    await sink.WriteAsync(new ReadOnlySequence<byte>(_scratch.WrittenMemory), cancellationToken);
                    await sink.WriteAsync(buffer, cancellationToken);
                    _scratch.ResetWrittenCount();
                    ChunkedEncoder.WriteChunkTerminator(_scratch);
                    await sink.WriteAsync(new ReadOnlySequence<byte>(_scratch.WrittenMemory), cancellationToken);
                }
                else
                {
                    await sink.WriteAsync(buffer, cancellationToken);
                }

                foreach (var observer in observers)
                {
                    await observer.OnDataAsync(buffer, cancellationToken);
                }

                var consumed = (int)buffer.Length;
                total += consumed;
                reader.AdvanceTo(buffer.End);
                await ReturnCreditAsync(consumed);
            }
            else
            {
                reader.AdvanceTo(buffer.End);
            }

            if (result.IsCompleted)
            {
                break;
            }
        }

        var trailers = _requestTrailers;
        if (trailers is not null)
        {
            request.Trailers = trailers;
        }

        if (chunked)
        {
            _scratch.ResetWrittenCount();
            ChunkedEncoder.WriteLastChunk(trailers, _scratch);
            await sink.WriteAsync(new ReadOnlySequence<byte>(_scratch.WrittenMemory), cancellationToken);
        }

        await sink.CompleteAsync(trailers, cancellationToken);
        foreach (var observer in observers)
        {
            await observer.OnCompletedAsync(trailers, cancellationToken);
        }

        return total;
    }

    /// <summary>The pipeline consumed request octets: credit back to the client, batched (stream and connection).</summary>
    private async ValueTask ReturnCreditAsync(int consumed)
    {
        int streamIncrement;
        lock (_conn.FlowLock)
        {
            var beforeHttp2 = (int)Math.Min(consumed, _bodyBeforeHttp2);
            _bodyBeforeHttp2 -= beforeHttp2;
            consumed -= beforeHttp2;
            _unreturned -= consumed;
            streamIncrement = _requestEnded ? 0 : _receiveCredit.OnConsumed(consumed);
        }

        if (streamIncrement > 0)
        {
            await _conn.WriteWindowUpdateAsync(Id, streamIncrement);
        }

        if (consumed > 0)
        {
            await _conn.ReturnConnectionCreditAsync(consumed);
        }
    }

    // RFC 9113 §8.1: the server may answer before the request is complete, then reset the stream with NO_ERROR; so a
    // body nobody will read needs no draining here (RunAsync resets the stream after the response).
    public ValueTask<bool> DrainRequestBodyAsync(BodyFraming framing, HttpRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(true);

    public ValueTask SendInterimAsync(HttpResponseHead head, CancellationToken cancellationToken) =>
        _conn.WriteHeadersAsync(Id, ResponseFields(head.StatusCode, head.Headers), endStream: false, StreamToken);

    public async ValueTask<long> SendWholeResponseAsync(HttpResponse response, HttpRequest request, bool keepAlive, CancellationToken cancellationToken)
    {
        var bodyAllowed = ForwardingRules.PrepareWholeResponse(response.Headers, request.Method, response.StatusCode, response.Body.Length);
        var body = bodyAllowed ? response.Body : ReadOnlyMemory<byte>.Empty;
        var trailers = response.Trailers is { Count: > 0 } t ? t : null;
        await SendHeadAsync(response.StatusCode, response.Headers, endStream: body.IsEmpty && trailers is null);
        if (!body.IsEmpty)
        {
            StartResponseRate(request);
            try
            {
                await SendDataAsync(new ReadOnlySequence<byte>(body), endStream: trailers is null);
            }
            finally
            {
                StopResponseRate();
            }
        }

        if (trailers is not null)
        {
            await SendTrailersAsync(trailers);
        }

        return body.Length;
    }

    public async ValueTask<(long Bytes, bool KeepAlive)> StreamResponseAsync(
        UpstreamConnection upstream, HttpRequest request, HttpResponse response, BodyFraming framing, bool keepAlive, CancellationToken cancellationToken)
    {
        var hasBody = framing.Kind != BodyKind.None;
        var transform = hasBody ? response.Transform : null;
        var headers = response.Headers;
        HopByHop.Remove(headers, keepUpgrade: false, keepTransferEncoding: false);
        if (framing.Kind == BodyKind.ContentLength && transform is null)
        {
            ForwardingRules.FixRelayedFraming(headers, framing);
        }
        else if (hasBody)
        {
            // RFC 9113 §8.1: the body's end is END_STREAM; a length that may not hold is not sent.
            headers.Remove("Content-Length");
        }

        if (_rt.Options.AddVia)
        {
            headers.Add("Via", ForwardingRules.Via(response.Version));
        }

        // Body octets already buffered, send credit open and no transform: the HEADERS wait in the connection's queue
        // for the first DATA, which follows at once, so both leave in one write. Otherwise they go now (a slow or
        // streaming origin's client, or one that keeps its window shut, must see the head without the body).
        var bodyReady = hasBody && transform is null && _conn.HasSendCredit(this) && HasBufferedInput(upstream.Transport.Input);
        await SendHeadAsync(response.StatusCode, headers, endStream: !hasBody, write: !bodyReady);
        if (!hasBody)
        {
            return (0, true);
        }

        _sink.Begin(transform, framing.Kind == BodyKind.ContentLength && transform is null ? framing.ContentLength : -1, upstream.Http2);
        StartResponseRate(request);
        try
        {
            var bytes = await BodyReader.RelayAsync(upstream.Transport.Input, framing, upstream.ResponseDecoder, _sink, new BodyRelayOptions(Message: response, Http2Origin: upstream.Http2), cancellationToken);
            return (bytes, true);
        }
        finally
        {
            StopResponseRate();
            _sink.End();
        }
    }

    /// <summary>
    /// Times the client's reading of a response body: over HTTP/2 a client that does not read holds its stream window
    /// shut, so the waits for send credit are the client's (the connection's socket writes are shared by all streams and
    /// not held against one). Kestrel's MinResponseDataRate counts the same waits (IsTimingWrite while flow-control blocked).
    /// </summary>
    private void StartResponseRate(HttpRequest request)
    {
        _rateRequest = request;
        _activeResponseRate = StartRate(ref _responseRate, _rt.Options.Timeouts.MinResponseDataRate, StreamToken);
    }

    private void StopResponseRate()
    {
        _activeResponseRate?.Stop();
        _activeResponseRate = null;
        _rateRequest = null;
    }

    /// <summary>The client read the response below the minimum rate: this stream alone is reset (CANCEL, as for a
    /// zero-window stall) and the exchange ends; the connection's other streams go on.</summary>
    private async ValueTask<MinDataRateException> ResetForSlowReadAsync(DataRateMonitor rate, OperationCanceledException cancelled)
    {
        var error = MinDataRateException.ClientTooSlow(_rt, Info, rate, _rateRequest!, ExchangePhase.ClientResponse, cancelled);
        _reset = true;
        await _conn.ResetStreamAsync(Id, Http2ErrorCode.Cancel, "the response was read below the minimum data rate");
        Abort(new IOException(error.Message));
        return error;
    }

    // RFC 9113 §8.6: 101 cannot be expressed in HTTP/2 (and HTTP/2 requests carry no Upgrade, §8.2.2): the stream is
    // reset with HTTP_1_1_REQUIRED, the code that tells a client to retry over HTTP/1.1.
    public async ValueTask<(long Up, long Down)> RelayUpgradeAsync(HttpResponseHead head, UpstreamConnection upstream, IRelayTap? tap, CancellationToken cancellationToken)
    {
        _reset = true;
        await _conn.ResetStreamAsync(Id, Http2ErrorCode.Http11Required, "an upgrade cannot be relayed over HTTP/2");
        return (0, 0);
    }

    public async ValueTask SendErrorAsync(int status, string message)
    {
        if (_reset)
        {
            return;
        }

        try
        {
            if (_headersSent)
            {
                _reset = true;
                await _conn.ResetStreamAsync(Id, Http2ErrorCode.InternalError, message);
                return;
            }

            var body = Encoding.UTF8.GetBytes("Interpose: " + message + "\n");
            var headers = new HttpHeaders();
            headers.Add("Content-Type", "text/plain; charset=utf-8");
            headers.Add("Content-Length", body.Length.ToString(CultureInfo.InvariantCulture));
            await SendHeadAsync(status, headers, endStream: false);
            await SendDataAsync(new ReadOnlySequence<byte>(body), endStream: true);
        }
        catch (Exception ex) when (ClientSession.IsConnectionFailure(ex) || ex is Http2ConnectionException)
        {
            // The stream or the client is gone; there is nobody left to tell.
            ProxyLog.ClientConnectionEnded(_rt.Logger, Info, ExchangePhase.ClientResponse, ex.Message);
        }
    }

    // ───────────────────────────── frames out ─────────────────────────────

    /// <summary>Sends fail once the stream is reset or the connection closed.</summary>
    private CancellationToken StreamToken => _cts.Token;

    private async ValueTask SendHeadAsync(int status, HttpHeaders headers, bool endStream, bool write = true)
    {
        _headersSent = true;
        await _conn.WriteHeadersAsync(Id, ResponseFields(status, headers), endStream, StreamToken, write);
        _responseEnded = endStream;
    }

    /// <summary>Whether <paramref name="input"/> holds unread octets now (nothing is consumed).</summary>
    private static bool HasBufferedInput(PipeReader input)
    {
        if (!input.TryRead(out var result))
        {
            return false;
        }

        input.AdvanceTo(result.Buffer.Start);
        return !result.Buffer.IsEmpty;
    }

    internal async ValueTask SendTrailersAsync(HttpHeaders trailers)
    {
        // RFC 9113 §8.1: trailers are a HEADERS frame with END_STREAM, no pseudo-fields.
        await _conn.WriteHeadersAsync(Id, Http2HeaderRules.FromHttp1Trailers(trailers), endStream: true, StreamToken);
        _responseEnded = true;
    }

    /// <summary>DATA frames no larger than the peer's SETTINGS_MAX_FRAME_SIZE, each waiting for window credit.</summary>
    internal async ValueTask SendDataAsync(ReadOnlySequence<byte> data, bool endStream)
    {
        var token = StreamToken;
        if (data.IsEmpty)
        {
            if (endStream)
            {
                await _conn.WriteDataAsync(Id, data, endStream: true, token);
                _responseEnded = true;
            }

            return;
        }

        var rate = _activeResponseRate;
        while (!data.IsEmpty)
        {
            var credit = _conn.TakeSendCreditAsync(this, (int)Math.Min(data.Length, _conn.PeerMaxFrameSize), rate?.Token ?? token);
            int granted;
            if (credit.IsCompleted || rate is null)
            {
                granted = await credit;
            }
            else
            {
                rate.WaitStarted();
                try
                {
                    granted = await credit;
                }
                catch (OperationCanceledException ex) when (rate.Violated)
                {
                    throw await ResetForSlowReadAsync(rate, ex);
                }

                rate.WaitEnded();
            }

            rate?.Transferred(granted);
            var chunk = data.Slice(0, granted);
            data = data.Slice(granted);
            await _conn.WriteDataAsync(Id, chunk, endStream && data.IsEmpty, token);
        }

        _responseEnded = endStream;
    }

    /// <summary>:status then the regular fields, connection-specific ones removed (RFC 9113 §8.3.2, §8.2.2), in the
    /// stream's one field list: the output HPACK-encodes a block before WriteHeadersAsync returns, so the list is free
    /// again for the next head.</summary>
    private List<HttpHeader> ResponseFields(int status, HttpHeaders headers)
    {
        var fields = _responseFields;
        fields.Clear();
        fields.Add(new(":status", status.ToString(CultureInfo.InvariantCulture)));
        Http2HeaderRules.AppendFromHttp1Response(headers, fields);
        return fields;
    }

    /// <summary>An origin's decoded response body, as DATA frames (through the response's transform, if any).</summary>
    /// <remarks>With a Content-Length and no transform, the DATA frame that completes the length carries END_STREAM
    /// (RFC 9113 §8.1: the body ends with the frame that has it), instead of an empty DATA frame after it: one frame
    /// and, on a lightly loaded connection, one TLS write less per response. A Content-Length body from an HTTP/1.1
    /// origin has no trailers; an HTTP/2 origin's may (§8.1), so from one the last DATA ends the stream only when the
    /// origin's stream already ended without them; otherwise END_STREAM waits for its end, on the trailing HEADERS or
    /// an empty DATA frame.</remarks>
    private sealed class DataFrameSink(Http2ServerStream stream) : IBodySink
    {
        private IBodyTransform? _transform;
        private long _contentLength;
        private Http2UpstreamStream? _origin;
        private long _sent;
        private bool _ended;

        /// <summary>Starts a response body (the sink is the stream's, reused); <paramref name="origin"/> is the HTTP/2
        /// origin stream it comes from, if any.</summary>
        public void Begin(IBodyTransform? bodyTransform, long length, Http2UpstreamStream? origin)
        {
            _transform = bodyTransform;
            _contentLength = length;
            _origin = origin;
            _sent = 0;
            _ended = false;
        }

        /// <summary>The body is over: the pooled sink keeps no reference to the exchange's transform or origin stream.</summary>
        public void End()
        {
            _transform = null;
            _origin = null;
        }

        public async ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
        {
            if (data.IsEmpty)
            {
                return;
            }

            if (_transform is null)
            {
                _sent += data.Length;
                _ended = _sent == _contentLength && _origin is not { EndedWithoutTrailers: false };
                await stream.SendDataAsync(data, endStream: _ended);
                return;
            }

            var transformed = await _transform.TransformAsync(data.ToArray(), cancellationToken);
            await stream.SendDataAsync(new ReadOnlySequence<byte>(transformed), endStream: false);
        }

        public async ValueTask CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken)
        {
            if (_ended)
            {
                return;
            }

            if (_transform is not null)
            {
                await stream.SendDataAsync(new ReadOnlySequence<byte>(await _transform.CompleteAsync(trailers, cancellationToken)), endStream: false);
            }

            if (trailers is { Count: > 0 })
            {
                await stream.SendTrailersAsync(trailers);
            }
            else
            {
                await stream.SendDataAsync(ReadOnlySequence<byte>.Empty, endStream: true);
            }
        }
    }
}
