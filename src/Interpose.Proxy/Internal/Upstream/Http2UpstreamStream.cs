using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Interpose.Core.Http;
using Interpose.Core.Http2;

namespace Interpose.Proxy.Internal;

/// <summary>
/// One exchange's stream on an <see cref="Http2UpstreamConnection"/> (RFC 9113 §8.1): the request leaves as HEADERS,
/// DATA and trailers; the response comes back as heads (1xx, then the final one) and a body pipe the
/// <see cref="ExchangePipeline"/> reads exactly as it reads an HTTP/1.1 origin's body.
/// </summary>
/// <remarks>
/// The response body is presented in HTTP/1.1 framing so that every existing client side and sink relays it
/// unchanged: with a Content-Length, the DATA octets as they are (RFC 9113 §8.1.1 checks the sum), the origin's
/// trailers kept apart (<see cref="ResponseTrailers"/>: the relay waits for the pipe's end after the declared length
/// and ends the body with them, RFC 9113 §8.1); without one, chunked (RFC 9112 §7.1), the origin's trailers becoming
/// the chunked trailer section. Either way the sinks turn them back into a trailing HEADERS for an HTTP/2 client (gRPC
/// status). Each DATA frame becomes one chunk as it arrives, so streaming (gRPC) is not delayed.
/// Response credit goes back to the origin only as the pipeline consumes the pipe (<see cref="CreditingReader"/>), so
/// a slow client holds at most this stream's window, never more, and the other streams are not stalled.
/// </remarks>
internal sealed class Http2UpstreamStream : IHttp2SendingStream
{
    /// <summary>Interim (1xx) responses allowed before the final one: an origin could otherwise keep a stream busy
    /// relaying them forever. Interpose's own bound; a real origin sends one or two (100, 103).</summary>
    private const int MaxInterimResponses = 16;

    private static readonly PipeOptions BodyPipe = new(pauseWriterThreshold: 0, useSynchronizationContext: false);

    private readonly Http2UpstreamConnection _conn;
    private readonly Pipe _body = new(BodyPipe);
    private readonly Channel<HttpResponseHead> _heads = Channel.CreateUnbounded<HttpResponseHead>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private FlowWindow _receiveWindow = null!;
    private ReceiveCredit _receiveCredit = null!;
    private bool _isHead;
    private int _interim;
    private bool _finalHead;
    private long? _declaredLength;
    private long _receivedLength;
    private bool _chunked;
    private HttpHeaders? _trailers;

    // Response octets (DATA and padding) received but not credited back yet, and those consumed but not sent (FlowLock).
    private long _unreturned;
    private int _consumed;

    private volatile bool _responseEnded;
    private volatile bool _requestEnded;
    private volatile bool _reset;
    private volatile Exception? _failure;
    private int _released;

    public Http2UpstreamStream(Http2UpstreamConnection connection)
    {
        _conn = connection;
        ResponseBody = new CreditingReader(this);
    }

    /// <summary>The stream id; 0 until the request's HEADERS were written.</summary>
    public int Id { get; private set; }

    /// <summary>Our send window on this stream (under the connection's FlowLock).</summary>
    public Http2StreamSendWindow SendWindow { get; } = new(new FlowWindow(0, 0));

    /// <summary>The response body in HTTP/1.1 framing (<see cref="ResponseFraming"/>).</summary>
    public PipeReader ResponseBody { get; }

    /// <summary>How <see cref="ResponseBody"/> is framed; known once the final head was read.</summary>
    public BodyFraming ResponseFraming { get; private set; }

    /// <summary>The trailers that ended a Content-Length body, if any; known once <see cref="ResponseBody"/> completed
    /// (a chunked body carries its own in its trailer section).</summary>
    public HttpHeaders? ResponseTrailers => _responseEnded ? _trailers : null;

    /// <summary>The response ended with no trailers: nothing follows the body's last octet (true at the latest when
    /// <see cref="ResponseBody"/> shows that octet, for an origin that sent END_STREAM with its last DATA).</summary>
    public bool EndedWithoutTrailers => _responseEnded && _trailers is null;

    public Http2UpstreamConnection Connection => _conn;

    /// <summary>Called under the write lock when the HEADERS are about to leave (the id is assigned there).</summary>
    internal void Open(int id, int initialSendWindow)
    {
        Id = id;
        SendWindow.Window = new FlowWindow(id, initialSendWindow);
        _receiveWindow = new FlowWindow(id, _conn.StreamWindowSize);
        _receiveCredit = new ReceiveCredit(_receiveWindow, Math.Max(1, _conn.StreamWindowSize / 2));
    }

    // ───────────────────────────── request ─────────────────────────────

    /// <summary>
    /// Sends the request head translated to HTTP/2 (RFC 9113 §8.3.1: pseudo-fields, Host as :authority,
    /// connection-specific fields removed, TE only as "trailers", §8.2.2), and a body already in hand with it.
    /// </summary>
    /// <exception cref="Http2RefusedException">The connection is going away; nothing was sent.</exception>
    /// <exception cref="HeaderListTooLargeException">The head is over the origin's SETTINGS_MAX_HEADER_LIST_SIZE; nothing was sent.</exception>
    /// <exception cref="IOException">The connection failed.</exception>
    public async ValueTask SendRequestAsync(HttpRequest request, bool bodyFollows, CancellationToken cancellationToken)
    {
        _isHead = request.Method == "HEAD";
        var head = new HttpRequestHead { Method = request.Method, Target = request.Path };
        foreach (var field in request.Headers)
        {
            head.Headers.Add(field.Name, field.Value);
        }

        var fields = Http2HeaderRules.FromHttp1Request(head, request.Scheme, request.Headers.Get("Host") ?? request.Authority);
        if (_conn.PeerMaxHeaderListSize is { } limit && Http2HeaderRules.FieldListSize(fields) is var size && size > limit)
        {
            // RFC 9113 §10.5.1: "A client that ... sends a field block larger than [SETTINGS_MAX_HEADER_LIST_SIZE] can
            // expect ... a 431 (Request Header Fields Too Large) status code". The origin said so in advance: the block
            // is not sent (the stream never opens, the HPACK state is untouched) and the client gets that 431 now.
            throw new HeaderListTooLargeException(size, limit);
        }

        var body = !bodyFollows && request.HasBody ? request.Body : ReadOnlyMemory<byte>.Empty;
        var trailers = !bodyFollows && request.Trailers is { Count: > 0 } t ? t : null;
        var trailerFields = trailers is null ? null : Http2HeaderRules.FromHttp1Trailers(trailers);
        if (trailerFields is not null && TrailersTooLarge(trailerFields, headSent: false) is { } tooLarge)
        {
            // Trailers in hand: checked before anything leaves, so the origin sees nothing of a request it would refuse.
            throw tooLarge;
        }

        var endStream = !bodyFollows && body.IsEmpty && trailers is null;
        await _conn.WriteRequestHeadersAsync(this, fields, endStream, cancellationToken);
        _requestEnded = endStream;
        if (!body.IsEmpty)
        {
            await SendDataAsync(new ReadOnlySequence<byte>(body), endStream: trailers is null, cancellationToken);
        }

        if (trailerFields is not null)
        {
            await SendTrailersAsync(trailerFields, cancellationToken);
        }
    }

    /// <summary>Where a streamed request body goes: DATA frames, then trailers or an empty END_STREAM DATA.</summary>
    public IBodySink CreateRequestSink(IBodyTransform? transform) => new RequestSink(this, transform);

    /// <summary>DATA frames no larger than the origin's SETTINGS_MAX_FRAME_SIZE, each within both send windows.</summary>
    private async ValueTask SendDataAsync(ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _conn.Closed);
        var token = linked.Token;
        while (!data.IsEmpty)
        {
            ThrowIfStopped();
            var granted = await _conn.TakeSendCreditAsync(this, (int)Math.Min(data.Length, _conn.PeerMaxFrameSize), token);
            ThrowIfStopped();
            var chunk = data.Slice(0, granted);
            data = data.Slice(granted);
            await _conn.WriteDataAsync(Id, chunk, endStream && data.IsEmpty, token);
        }

        _requestEnded |= endStream;
    }

    private async ValueTask SendEndStreamAsync(CancellationToken cancellationToken)
    {
        ThrowIfStopped();
        await _conn.WriteDataAsync(Id, ReadOnlySequence<byte>.Empty, endStream: true, cancellationToken);
        _requestEnded = true;
    }

    /// <exception cref="TrailerListTooLargeException">The trailers are over the origin's SETTINGS_MAX_HEADER_LIST_SIZE:
    /// not sent, the stream reset with CANCEL.</exception>
    private async ValueTask SendTrailersAsync(List<HttpHeader> fields, CancellationToken cancellationToken)
    {
        ThrowIfStopped();
        if (TrailersTooLarge(fields, headSent: true) is { } tooLarge)
        {
            // RFC 9113 §6.5.2: the limit covers every field section, trailers included. The head and maybe the body
            // already left: ending the stream without its trailers would hand the origin a truncated request as if it
            // were complete, so the stream is reset instead (RFC 9113 §8.1: a request without END_STREAM is incomplete;
            // CANCEL, §7: "the stream is no longer needed"). The HPACK state is untouched: the block is never encoded.
            Fail(tooLarge, Http2ErrorCode.Cancel);
            throw tooLarge;
        }

        // RFC 9113 §8.1: trailers are a HEADERS frame with END_STREAM and no pseudo-fields.
        await _conn.WriteTrailersAsync(Id, fields, cancellationToken);
        _requestEnded = true;
    }

    /// <summary>The failure for trailers over the origin's SETTINGS_MAX_HEADER_LIST_SIZE (RFC 7541 §4.1 size), if they are.</summary>
    private TrailerListTooLargeException? TrailersTooLarge(List<HttpHeader> fields, bool headSent) =>
        _conn.PeerMaxHeaderListSize is { } limit && Http2HeaderRules.FieldListSize(fields) is var size && size > limit
            ? new TrailerListTooLargeException(size, limit, headSent)
            : null;

    private void ThrowIfStopped()
    {
        if (_failure is { } failure)
        {
            ExceptionDispatchInfo.Throw(failure);
        }

        if (_reset)
        {
            // RFC 9113 §8.1: the origin answered and asked for no more of the request (RST_STREAM NO_ERROR).
            throw new IOException($"the origin reset stream {Id}; the rest of the request body is not sent");
        }
    }

    /// <summary>The stream failed or was reset: a sender waiting for credit stops (and ThrowIfStopped says why).</summary>
    private void StopSender()
    {
        lock (_conn.FlowLock)
        {
            SendWindow.Stop();
        }
    }

    // ───────────────────────────── response (from the reader loop) ─────────────────────────────

    /// <summary>Reads the next response head: a 1xx interim one or the final one (HTTP/1.1 form, version 2.0).</summary>
    /// <exception cref="Http2RefusedException">The origin did not process the request (retry is safe).</exception>
    /// <exception cref="IOException">The stream or the connection failed.</exception>
    public async ValueTask<HttpResponseHead> ReadResponseHeadAsync(ExchangeTimings timings, CancellationToken cancellationToken)
    {
        try
        {
            var head = await _heads.Reader.ReadAsync(cancellationToken);
            if (timings.FirstByte == 0)
            {
                timings.FirstByte = _conn.Runtime.Time.GetTimestamp();
            }

            return head;
        }
        catch (ChannelClosedException ex)
        {
            ExceptionDispatchInfo.Throw(ex.InnerException ?? new IOException($"stream {Id} ended without a response"));
            throw;
        }
    }

    /// <summary>A complete field block for this stream: a response head, or the trailers.</summary>
    internal void OnHeaders(List<HttpHeader> fields, bool endStream)
    {
        if (_failure is not null)
        {
            return;
        }

        try
        {
            if (_finalHead)
            {
                // RFC 9113 §8.1: a second field block after the final head is the trailer section and ends the stream.
                if (!endStream)
                {
                    throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, $"HEADERS on stream {Id} without END_STREAM after the response head (RFC 9113 §8.1).");
                }

                // RFC 9113 §8.1.1: the trailers end the stream, so the DATA must add up to the content-length by now, as
                // on a DATA frame with END_STREAM (OnData); short, the response is malformed, not a body cut short.
                if (_declaredLength is { } declared && _receivedLength != declared && ResponseFraming.Kind != BodyKind.None)
                {
                    throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, $"trailers after {_receivedLength} octets of DATA for a Content-Length of {declared} (RFC 9113 §8.1.1).");
                }

                var trailers = Http2HeaderRules.ToHttp1Trailers(fields, Id);
                EndResponse(trailers);
                return;
            }

            var head = Http2HeaderRules.ToHttp1Response(fields, Id);
            head.ReasonPhrase = ReasonPhrases.For(head.StatusCode);
            if (head.StatusCode < 200)
            {
                // RFC 9113 §8.1: an interim response never ends the stream.
                if (endStream)
                {
                    throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, $"a {head.StatusCode} with END_STREAM (RFC 9113 §8.1).");
                }

                if (++_interim > MaxInterimResponses)
                {
                    throw new Http2StreamException(Id, Http2ErrorCode.EnhanceYourCalm, $"more than {MaxInterimResponses} interim responses");
                }

                _heads.Writer.TryWrite(head);
                return;
            }

            _finalHead = true;
            ResponseFraming = FramingFor(head, endStream);
            _heads.Writer.TryWrite(head);
            _heads.Writer.TryComplete();
            if (endStream)
            {
                EndResponse(null);
            }
        }
        catch (Http2StreamException ex)
        {
            Fail(new IOException(ex.Message), ex.ErrorCode);
        }
    }

    /// <summary>The body's framing as the pipeline will read it from <see cref="ResponseBody"/>.</summary>
    /// <exception cref="Http2StreamException">The content-length is invalid or its values differ, or END_STREAM came
    /// with a head that declares content.</exception>
    private BodyFraming FramingFor(HttpResponseHead head, bool endStream)
    {
        // RFC 9110 §6.4.1: HEAD, 204 and 304 have no content whatever the fields say; RFC 9113 §8.1.1: such a response
        // "might contain a content-length header field with a non-zero value" and no DATA.
        if (_isHead || head.StatusCode is 204 or 304)
        {
            return new BodyFraming(BodyKind.None, 0);
        }

        // RFC 9113 §8.1.1: the DATA must add up to the content-length, checked in OnData against the length read here by
        // the parser the HTTP/1.1 side uses (RFC 9110 §8.6): a list of identical values ("5, 5") is that value, where a
        // parse of its own that failed on it skipped the check; an invalid value or values that differ are malformed.
        long length;
        try
        {
            length = MessageFraming.ParseContentLength(head.Headers, inResponse: true);
        }
        catch (HttpProtocolException ex)
        {
            throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, $"{ex.Message} (RFC 9113 §8.1.1).");
        }

        if (length >= 0)
        {
            _declaredLength = length;
        }

        if (endStream)
        {
            if (_declaredLength is > 0)
            {
                throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, $"END_STREAM with the head but a Content-Length of {_declaredLength} (RFC 9113 §8.1.1).");
            }

            return new BodyFraming(BodyKind.None, 0);
        }

        if (_declaredLength is { } declared)
        {
            return new BodyFraming(BodyKind.ContentLength, declared);
        }

        _chunked = true;
        return new BodyFraming(BodyKind.Chunked, 0);
    }

    /// <summary>A DATA frame (the reader loop); returns the connection credit to give back at once (octets nobody will read).</summary>
    internal int OnData(ReadOnlySequence<byte> data, int frameLength, bool endStream)
    {
        try
        {
            lock (_conn.FlowLock)
            {
                // RFC 9113 §6.9.1: the whole frame counts against the stream window.
                _receiveWindow.Consume(frameLength);
            }

            if (!_finalHead)
            {
                throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, $"DATA on stream {Id} before the response head (RFC 9113 §8.1).");
            }

            if (_failure is not null || _responseEnded || Volatile.Read(ref _released) != 0)
            {
                return frameLength;
            }

            _receivedLength += data.Length;
            if (_declaredLength is { } declared && (_receivedLength > declared || (endStream && _receivedLength != declared)) && ResponseFraming.Kind != BodyKind.None)
            {
                // RFC 9113 §8.1.1: "malformed if the value of a content-length header field does not equal the sum of
                // the DATA frame payload lengths".
                throw new Http2StreamException(Id, Http2ErrorCode.ProtocolError, $"{_receivedLength} octets of DATA for a Content-Length of {declared} (RFC 9113 §8.1.1).");
            }

            if (ResponseFraming.Kind == BodyKind.None)
            {
                // A HEAD, 204 or 304 response carries no content (RFC 9110 §6.4.1): octets are dropped.
                if (endStream)
                {
                    EndResponse(null);
                }

                return frameLength;
            }

            lock (_conn.FlowLock)
            {
                _unreturned += frameLength;
            }

            if (!data.IsEmpty)
            {
                var writer = _body.Writer;
                if (_chunked)
                {
                    ChunkedEncoder.WriteChunkHeader(data.Length, writer);
                }

                foreach (var segment in data)
                {
                    writer.Write(segment.Span);
                }

                if (_chunked)
                {
                    ChunkedEncoder.WriteChunkTerminator(writer);
                }

                if (!endStream)
                {
                    // No pause threshold: the stream window bounds what is buffered, so this completes at once (the
                    // reader loop never waits on a stream).
                    var flush = writer.FlushAsync();
                    if (!flush.IsCompleted)
                    {
                        _ = flush.AsTask();
                    }
                }
            }

            if (endStream)
            {
                // Completing the pipe commits the last octets too: the reader sees them only once the stream is
                // marked ended, so a sink that asks EndedWithoutTrailers on the last octet gets the answer.
                EndResponse(null);
            }

            return 0;
        }
        catch (Http2StreamException ex)
        {
            Fail(new IOException(ex.Message), ex.ErrorCode);
            return frameLength;
        }
    }

    private void EndResponse(HttpHeaders? trailers)
    {
        if (_responseEnded)
        {
            return;
        }

        if (!_chunked && trailers is { Count: > 0 })
        {
            // RFC 9113 §8.1: trailers may follow DATA whatever the content-length; HTTP/1.1 framing of a Content-Length
            // body has no place for them, so they wait beside it (ResponseTrailers), set before the end is visible.
            _trailers = trailers;
        }

        _responseEnded = true;
        if (_chunked)
        {
            // The end of a chunked body, with the origin's trailers as its trailer section (RFC 9112 §7.1.2).
            ChunkedEncoder.WriteLastChunk(trailers, _body.Writer);
        }

        _body.Writer.Complete();
    }

    /// <summary>The origin reset the stream (RFC 9113 §6.4).</summary>
    internal void OnReset(Http2ErrorCode code)
    {
        _reset = true;
        if (code == Http2ErrorCode.RefusedStream && !_finalHead)
        {
            // RFC 9113 §8.7: "REFUSED_STREAM ... indicates that the stream was closed prior to any processing".
            Fail(new Http2RefusedException($"the origin refused stream {Id} (REFUSED_STREAM)"), null);
            return;
        }

        if (code == Http2ErrorCode.NoError && _responseEnded)
        {
            // RFC 9113 §8.1: a complete response, then "stop sending the request": not an error.
            StopSender();
            return;
        }

        Fail(new IOException($"the origin reset stream {Id} ({code})"), null);
    }

    /// <summary>The origin did not process this stream (GOAWAY above its id): a retry elsewhere is safe.</summary>
    internal void FailRetryable(string reason) => Fail(new Http2RefusedException($"stream {Id} was not processed by the origin ({reason})"), null);

    /// <summary>Ends the stream in error; with <paramref name="resetCode"/>, tells the origin too (RST_STREAM).</summary>
    internal void Fail(Exception error, Http2ErrorCode? resetCode)
    {
        if (_failure is not null || (_responseEnded && _requestEnded))
        {
            return;
        }

        _failure = error;
        _heads.Writer.TryComplete(error);
        if (!_responseEnded)
        {
            _body.Writer.Complete(error);
        }

        if (resetCode is { } code && !_reset && Id != 0)
        {
            _reset = true;
            _ = ResetQuietlyAsync(code);
        }

        StopSender();
    }

    private async Task ResetQuietlyAsync(Http2ErrorCode code)
    {
        try
        {
            await _conn.WriteRstStreamAsync(Id, code);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            // The connection is gone with the stream.
        }
    }

    // ───────────────────────────── end ─────────────────────────────

    /// <summary>
    /// The exchange is done with the stream: when either direction is unfinished (killed, cancelled, failed), RST_STREAM
    /// CANCEL tells the origin to stop (RFC 9113 §8.1); the slot and the octets nobody read are given back.
    /// </summary>
    public async ValueTask CloseAsync()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        if (Id != 0 && !_reset && !(_requestEnded && _responseEnded) && !_conn.IsClosed)
        {
            _reset = true;
            await ResetQuietlyAsync(Http2ErrorCode.Cancel);
        }

        _failure ??= new IOException($"stream {Id} closed");
        _heads.Writer.TryComplete();
        StopSender();
        long unreturned;
        lock (_conn.FlowLock)
        {
            unreturned = _unreturned + _consumed;
            _unreturned = 0;
            _consumed = 0;
        }

        await _body.Writer.CompleteAsync();
        await _body.Reader.CompleteAsync();
        _conn.ReleaseStream(this);
        try
        {
            await _conn.ReturnConnectionCreditAsync((int)unreturned);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            // The connection is gone with its windows.
        }
    }

    /// <summary>The pipeline consumed <paramref name="pipeBytes"/> octets of the body pipe (chunk framing included).</summary>
    private void OnConsumed(long pipeBytes)
    {
        lock (_conn.FlowLock)
        {
            // Chunk framing makes the pipe a little longer than the DATA: credit never exceeds what was received.
            var credit = (int)Math.Min(pipeBytes, _unreturned);
            _unreturned -= credit;
            _consumed += credit;
        }
    }

    /// <summary>Sends the credit of consumed octets: stream WINDOW_UPDATE (batched) and connection credit.</summary>
    private async ValueTask ReturnCreditAsync()
    {
        int credit;
        int streamIncrement = 0;
        lock (_conn.FlowLock)
        {
            credit = _consumed;
            _consumed = 0;
            if (credit > 0 && !_responseEnded)
            {
                streamIncrement = _receiveCredit.OnConsumed(credit);
            }
        }

        if (credit == 0)
        {
            return;
        }

        if (streamIncrement > 0)
        {
            await _conn.WriteWindowUpdateAsync(Id, streamIncrement);
        }

        await _conn.ReturnConnectionCreditAsync(credit);
    }

    /// <summary>The body pipe's reader, returning window credit as the pipeline consumes (before each next read).</summary>
    private sealed class CreditingReader(Http2UpstreamStream stream) : PipeReader
    {
        private readonly PipeReader _inner = stream._body.Reader;
        private ReadOnlySequence<byte> _last;

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            await stream.ReturnCreditAsync();
            var result = await _inner.ReadAsync(cancellationToken);
            _last = result.Buffer;
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (_inner.TryRead(out result))
            {
                _last = result.Buffer;
                return true;
            }

            return false;
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            var taken = _last.Slice(_last.Start, consumed).Length;
            _inner.AdvanceTo(consumed, examined);
            _last = default;
            stream.OnConsumed(taken);
        }

        public override void CancelPendingRead() => _inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => _inner.Complete(exception);
    }

    /// <summary>A streamed request body as DATA frames (through the request's transform, if any), then its end.</summary>
    private sealed class RequestSink(Http2UpstreamStream stream, IBodyTransform? transform) : IBodySink
    {
        public async ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
        {
            if (data.IsEmpty)
            {
                return;
            }

            if (transform is not null)
            {
                data = new ReadOnlySequence<byte>(await transform.TransformAsync(data.ToArray(), cancellationToken));
            }

            await stream.SendDataAsync(data, endStream: false, cancellationToken);
        }

        public async ValueTask CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken)
        {
            if (transform is not null)
            {
                await stream.SendDataAsync(new ReadOnlySequence<byte>(await transform.CompleteAsync(trailers, cancellationToken)), endStream: false, cancellationToken);
            }

            if (trailers is { Count: > 0 })
            {
                await stream.SendTrailersAsync(Http2HeaderRules.FromHttp1Trailers(trailers), cancellationToken);
            }
            else
            {
                await stream.SendEndStreamAsync(cancellationToken);
            }
        }
    }
}
