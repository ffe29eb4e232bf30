using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using Interpose.Core.Http;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;

namespace Interpose.Proxy.Internal;

/// <summary>
/// HTTP/2 (RFC 9113) on the client's side of an intercepted connection: one reader loop that only parses frames and
/// routes them, one <see cref="Http2ServerStream"/> per request running the <see cref="ExchangePipeline"/> on a task of
/// its own, and one writer (<see cref="Http2ServerConnection"/>.Writer) that serializes every stream's frames.
/// </summary>
/// <remarks>
/// <code>
///  preface + SETTINGS ─► reader loop ─┬─ HEADERS (+CONTINUATION) ─► HPACK ─► validate ─► stream task: pipeline ─► origin (HTTP/1.1)
///                                     ├─ DATA ─► the stream's request pipe (bounded by its receive window)
///                                     ├─ WINDOW_UPDATE ─► send windows (wakes streams waiting to send DATA)
///                                     ├─ SETTINGS / PING ─► ACK (flood budgets)
///                                     └─ RST_STREAM ─► cancel the stream (rapid-reset budget)
///  any connection error ─► GOAWAY with its code; any stream error ─► RST_STREAM
/// </code>
/// NOTE: the reader never awaits a stream (only the writer's lock, for ACKs and resets), so one slow exchange never
/// stops the frames of the others.
/// </remarks>
internal sealed partial class Http2ServerConnection : IAsyncDisposable
{
    /// <summary>A request body over HTTP/2 is at most its stream window ahead of the pipeline: the pipe needs no other bound.</summary>
    private static readonly System.IO.Pipelines.PipeOptions RequestBodyPipe = new(pauseWriterThreshold: 0, useSynchronizationContext: false);

    /// <summary>Finished stream objects kept for reuse: 100, Kestrel's Http2Connection.MaxStreamPoolSize (above
    /// Http2Limits.MaxConcurrentStreams, so a busy connection reuses them all).</summary>
    private const int MaxPooledStreams = 100;

    private readonly ClientFlow _flow;
    private readonly ProxyRuntime _rt;
    private readonly Transport _client;
    private readonly TunnelTarget _tunnel;
    private readonly ConcurrentDictionary<int, Http2ServerStream> _streams = new();

    // Streams whose task has ended (queued by the task), recycled into _streamPool by the reader loop only: a frame the
    // reader routes can never reach a stream object that serves another stream meanwhile.
    private readonly ConcurrentQueue<Http2ServerStream> _finished = new();
    private readonly Stack<Http2ServerStream> _streamPool = new();
    private readonly HpackDecoder _decoder = new();
    private readonly Http2HeaderBlockTracker _blocks = new();
    private readonly Http2FieldCollector _fields = new();
    private readonly Http2Settings _peerSettings = new();
    private readonly RateBudget _resets = new(Http2Limits.ResetBudgetPerWindow, Http2Limits.ResetBudgetWindow);
    private readonly RateBudget _controlFrames = new(Http2Limits.ControlFrameBudgetPerWindow, Http2Limits.ControlFrameBudgetWindow);
    private readonly RateBudget _windowUpdates = new(Http2Limits.WindowUpdateBudgetPerWindow, Http2Limits.ControlFrameBudgetWindow);
    private readonly RateBudget _emptyFrames = new(Http2Limits.EmptyFrameBudgetPerWindow, Http2Limits.EmptyFrameBudgetWindow);
    private readonly long _startedAt;
    private readonly CancellationTokenSource _closed;

    // Receive side (the client's DATA): debited by the reader, credited back as the streams' pipelines consume.
    private readonly FlowWindow _receiveWindow;
    private readonly ReceiveCredit _receiveCredit;

    // The field block being read came in a HEADERS frame that depends on itself: decoded, then its stream reset.
    private bool _blockDependsOnItself;

    // The highest stream id the client opened (RFC 9113 §5.1.1: new ids only grow) and how many it opened.
    private int _lastStreamId;
    private int _openedStreams;
    private volatile bool _goAwaySent;

    // RFC 9113 §6.5.3: our SETTINGS must be acknowledged within Http2Limits.SettingsAckTimeout.
    private ITimer? _settingsAckTimer;

    // A connection error found outside the reader loop (a timer): the loop stops at its next read.
    private volatile bool _failed;

    // The reader loop's deadline; a stream that ends the last one starts the idle timeout on it (see OnStreamDone).
    private TimeoutScope? _readDeadline;

    // Set when OnStreamDone started the idle timeout while the reader believed streams open (ReaderDeadline.None).
    private int _idleStartedByStream;

    // What the reader's deadline is armed for: a finished stream starts the idle timeout only over ReaderDeadline.None.
    private ReaderDeadline _armedDeadline;

    // Makes "what is the deadline armed for" and "change its timeout" one step, for the reader and for a stream that
    // ends the last one (OnStreamDone, on the stream's task). Without it, a stream that found the deadline armed for
    // None just before the reader re-armed it for a new field block then set the field block's deadline to the
    // keep-alive timeout (a CONTINUATION flood given 130 s instead of 30 s, or a slow block cut at the idle time).
    private readonly Lock _deadlineLock = new();

    public Http2ServerConnection(ClientFlow flow, TunnelTarget tunnel)
    {
        _flow = flow;
        _rt = flow.Runtime;
        _client = flow.Client;
        _tunnel = tunnel;
        _startedAt = _rt.Time.GetTimestamp();
        _closed = CancellationTokenSource.CreateLinkedTokenSource(_rt.Aborted);
        _receiveWindow = new FlowWindow(0, _rt.Options.Http2ConnectionWindowSize);
        _receiveCredit = new ReceiveCredit(_receiveWindow, _rt.Options.Http2ConnectionWindowSize / 2);
        _output = new Http2FrameOutput(_client, _closed.Token);
    }

    internal ClientFlow Flow => _flow;

    internal ProxyRuntime Runtime => _rt;

    internal TunnelTarget Tunnel => _tunnel;

    /// <summary>Cancelled when the connection ends: every stream's writes and waits stop.</summary>
    internal CancellationToken Closed => _closed.Token;

    /// <summary>The peer's SETTINGS_MAX_FRAME_SIZE: the largest DATA or HEADERS payload we may send.</summary>
    internal int PeerMaxFrameSize => _peerSettings.MaxFrameSize;

    /// <summary>Serves the connection until the client closes it, a connection error, or the proxy drains.</summary>
    /// <param name="upgrade">When the connection was upgraded from HTTP/1.1 (<c>Upgrade: h2c</c>, RFC 7540 §3.2): the
    /// client's HTTP2-Settings and the request stream 1 carries; null when the client started with the preface.</param>
    public async Task ServeAsync(H2cUpgradeRequest? upgrade = null)
    {
        var input = _client.Input;
        using var draining = _rt.Draining.Register(static s => ((Http2ServerConnection)s!).OnDraining(), this);
        try
        {
            if (upgrade is not null)
            {
                // RFC 7540 §3.2.1: "A server decodes and interprets these values as it would any other SETTINGS frame.
                // Explicit acknowledgement of these settings is not necessary, since a 101 response serves as implicit
                // acknowledgement."
                lock (FlowLock)
                {
                    foreach (var setting in upgrade.Settings)
                    {
                        _peerSettings.Apply(setting);
                    }
                }

                _output.SetPeerHeaderTableSize(_peerSettings.HeaderTableSize);
            }

            // RFC 9113 §3.4: our preface is a SETTINGS frame; the connection window is raised by a WINDOW_UPDATE. After an
            // upgrade it is the first HTTP/2 frame after the 101 (RFC 7540 §3.5).
            await WriteSettingsAsync();
            if (!await ReadPrefaceAsync(input))
            {
                await GoAwayAsync(Http2ErrorCode.ProtocolError, "the client did not send the HTTP/2 preface (RFC 9113 §3.4)");
                return;
            }

            if (upgrade is not null)
            {
                OpenUpgradedStream(upgrade);
            }

            // RFC 9113 §6.5.3: "If the sender of a SETTINGS frame does not receive an acknowledgment within a reasonable
            // amount of time, it MAY issue a connection error of type SETTINGS_TIMEOUT."
            _settingsAckTimer = _rt.Time.CreateTimer(static s => ((Http2ServerConnection)s!).OnSettingsAckTimeout(), this, Http2Limits.SettingsAckTimeout, Timeout.InfiniteTimeSpan);
            await ReadFramesAsync(input);
        }
        catch (Http2ConnectionException ex)
        {
            await GoAwayAsync(ex.ErrorCode, ex.Message);
        }
        catch (Exception ex) when (ClientSession.IsConnectionFailure(ex))
        {
            ProxyLog.ClientConnectionEnded(_rt.Logger, _flow.Info, _flow.Phase, ex.Message);
        }
        catch (Exception ex)
        {
            // A bug, not the client leaving: logged with its stack (event 199, as ClientSession does), and the client told
            // (RFC 9113 §5.4.1: a connection error is GOAWAY, INTERNAL_ERROR here, §7) instead of a silent close.
            ProxyLog.SessionCrashed(_rt.Logger, _flow.Info, ex);
            await GoAwayAsync(Http2ErrorCode.InternalError, "internal error");
        }
        finally
        {
            // Streams still running end with the connection: their writes fail, their body pipes complete.
            await _closed.CancelAsync();
            foreach (var stream in _streams.Values)
            {
                stream.Abort(new IOException("the HTTP/2 connection closed"));
            }

            foreach (var stream in _streams.Values)
            {
                await stream.Completion;
            }

            RecycleFinishedStreams();
            while (_streamPool.TryPop(out var pooled))
            {
                pooled.Dispose();
            }
        }
    }

    /// <summary>Reads the 24-octet client preface (RFC 9113 §3.4); false when something else came.</summary>
    private async ValueTask<bool> ReadPrefaceAsync(System.IO.Pipelines.PipeReader input)
    {
        using var scope = new TimeoutScope(_rt.Time, _rt.Options.Timeouts.RequestHead, _closed.Token);
        while (true)
        {
            var result = await input.ReadAsync(scope.Token);
            var buffer = result.Buffer;
            if (buffer.Length >= Http2Preface.Length)
            {
                Span<byte> preface = stackalloc byte[Http2Preface.Length];
                buffer.Slice(0, Http2Preface.Length).CopyTo(preface);
                input.AdvanceTo(buffer.GetPosition(Http2Preface.Length));
                return Http2Preface.Match(preface) == PrefaceMatch.Complete;
            }

            if (result.IsCompleted)
            {
                input.AdvanceTo(buffer.End);
                return false;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>The reader loop: parse, route, never run an exchange (the streams' tasks do).</summary>
    private async Task ReadFramesAsync(System.IO.Pipelines.PipeReader input)
    {
        // RFC 9113 §9.1: a server may close an idle connection. With no stream open, the keep-alive timeout of
        // HTTP/1.1 runs (ProxyTimeouts.IdleKeepAlive) and control frames do not restart it (Go's IdleTimeout counts the
        // same way), so PINGs cannot hold a connection forever; it ends with a graceful GOAWAY.
        // A field block left open (HEADERS without END_HEADERS) must end within Http2Limits.FieldBlockTimeout, as a
        // request head must (Kestrel's RequestHeadersTimeout covers the HEADERS/CONTINUATION sequence too).
        // NOTE: the deadline stays armed while streams are open (with no timeout), so the stream that ends the last one
        // can start the idle timeout itself (OnStreamDone). Waking the reader for it instead (CancelPendingRead) cancelled
        // the TLS read under it: exceptions thrown and caught on every stream that left the connection idle.
        using var deadline = _readDeadline = new TimeoutScope(_rt.Time);
        ReaderDeadline? armed = null;
        while (true)
        {
            var wanted = _blocks.IsOpen ? ReaderDeadline.FieldBlock : _streams.IsEmpty ? ReaderDeadline.Idle : ReaderDeadline.None;
            if (wanted != armed)
            {
                armed = wanted;
                lock (_deadlineLock)
                {
                    _armedDeadline = wanted;
                    deadline.Disarm();
                    deadline.Arm(
                        wanted switch
                        {
                            ReaderDeadline.Idle => _rt.Options.Timeouts.IdleKeepAlive,
                            ReaderDeadline.FieldBlock => Http2Limits.FieldBlockTimeout,
                            _ => Timeout.InfiniteTimeSpan,
                        },
                        _closed.Token);
                    _idleStartedByStream = 0;
                }
            }
            else if (armed == ReaderDeadline.None && Volatile.Read(ref _idleStartedByStream) == 1)
            {
                lock (_deadlineLock)
                {
                    if (_idleStartedByStream == 1 && !_streams.IsEmpty)
                    {
                        // A stream ended the last one and a new one opened since: no idle timeout while it runs.
                        _idleStartedByStream = 0;
                        deadline.Reset(Timeout.InfiniteTimeSpan);
                    }
                }
            }

            System.IO.Pipelines.ReadResult result;
            try
            {
                result = await input.ReadAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (deadline.TimedOut && armed != ReaderDeadline.FieldBlock)
            {
                if (!_streams.IsEmpty)
                {
                    // The idle timeout a finished stream started raced a new stream: not idle, read on.
                    armed = null;
                    continue;
                }

                await GoAwayAsync(Http2ErrorCode.NoError, "idle", graceful: true);
                return;
            }
            catch (OperationCanceledException) when (deadline.TimedOut && armed == ReaderDeadline.FieldBlock)
            {
                ProxyLog.Http2Timeout(_rt.Logger, _flow.Info, _blocks.StreamId, "the field block (HEADERS without END_HEADERS)", Http2Limits.FieldBlockTimeout.TotalSeconds, "GOAWAY", Http2ErrorCode.ProtocolError);
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"field block of stream {_blocks.StreamId} not ended within {Http2Limits.FieldBlockTimeout.TotalSeconds:0} s");
            }

            if (_failed)
            {
                // A timer ended the connection (its GOAWAY is sent); nothing more is read.
                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                return;
            }

            var buffer = result.Buffer;
            try
            {
                while (true)
                {
                    Http2Frame frame;
                    try
                    {
                        if (!Http2FrameReader.TryReadFrame(ref buffer, Http2Limits.MaxFrameSize, out frame))
                        {
                            break;
                        }
                    }
                    catch (Http2StreamException ex)
                    {
                        // The frame was consumed; only its stream is reset (RFC 9113 §5.4.2).
                        await ResetStreamAsync(ex.StreamId, ex.ErrorCode, ex.Message);
                        if (_failed)
                        {
                            return;
                        }

                        continue;
                    }

                    await OnFrameAsync(frame);
                    if (_failed)
                    {
                        // A connection error was raised on the way (GOAWAY sent): the rest is not read.
                        return;
                    }
                }
            }
            finally
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }

            if (result.IsCompleted)
            {
                return;
            }

            if (_goAwaySent && _streams.IsEmpty)
            {
                // A graceful GOAWAY was sent and the last stream ended: nothing more will be served, once the last
                // stream's frames are out (the connection closes next).
                await _output.FlushAsync();
                return;
            }
        }
    }

    private async ValueTask OnFrameAsync(Http2Frame frame)
    {
        // RFC 9113 §4.3: a field block is contiguous; CONTINUATION floods are bounded here.
        var blockEnded = _blocks.OnFrame(frame);
        switch (frame.Type)
        {
            case FrameType.Headers:
            case FrameType.Continuation:
                await OnFieldBlockFragmentAsync(frame, blockEnded);
                break;
            case FrameType.Data:
                await OnDataAsync(frame);
                break;
            case FrameType.RstStream:
                OnRstStream(frame);
                break;
            case FrameType.Settings:
                await OnSettingsAsync(frame);
                break;
            case FrameType.Ping:
                SpendControlBudget("PING/SETTINGS flood (CVE-2019-9512)");
                if (!frame.IsAck)
                {
                    // RFC 9113 §6.7: "Receivers of a PING frame that does not include an ACK flag MUST send a PING frame
                    // with the ACK flag set in response, with an identical frame payload."
                    await WritePingAckAsync(frame.PingData);
                }

                break;
            case FrameType.WindowUpdate:
                await OnWindowUpdateAsync(frame);
                break;
            case FrameType.GoAway:
                // The client will open no more streams; those in flight finish (RFC 9113 §6.8).
                _goAwaySent = true;
                break;
            case FrameType.PushPromise:
                // RFC 9113 §8.4: "A client cannot push. Thus, servers MUST treat the receipt of a PUSH_PROMISE frame as a
                // connection error of type PROTOCOL_ERROR."
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "PUSH_PROMISE from a client (RFC 9113 §8.4).");
            default:
                // PRIORITY (deprecated, RFC 9113 §5.3.2) and unknown types (§5.5) are ignored.
                break;
        }
    }

    private async ValueTask OnFieldBlockFragmentAsync(Http2Frame frame, bool blockEnded)
    {
        if (frame.Type == FrameType.Headers)
        {
            _fields.Begin(frame.StreamId, frame.EndStream);
            _blockDependsOnItself = frame.DependsOnItself;
        }

        if (frame.Type == FrameType.Continuation && frame.Payload.IsEmpty && !blockEnded)
        {
            SpendBudget(_emptyFrames, "empty frame flood (CVE-2019-9518)");
        }

        // The decoder sees every block, wanted or not, so its table stays in step with the client's (RFC 9113 §4.3).
        _decoder.Decode(frame.Payload, blockEnded, _fields);
        if (!blockEnded)
        {
            return;
        }

        var streamId = _fields.StreamId;
        var fields = _fields.Take();
        if (_blockDependsOnItself)
        {
            await ResetSelfDependentStreamAsync(streamId);
            return;
        }

        if (!_streams.TryGetValue(streamId, out var existing) && streamId <= _lastStreamId && _fields.EndStream && !HasPseudoFields(fields))
        {
            // A trailer section on a stream that is closed, most often one the proxy reset while the client was still
            // sending it: RFC 9113 §5.1 (closed): "an endpoint MUST ignore frames that it receives on closed streams
            // after it has sent a RST_STREAM frame". Its block was decoded above, so the HPACK table stays in step
            // (§4.3). A request head on a lower id (a reused id) still ends the connection in OpenStreamAsync.
            return;
        }

        if (existing is not null)
        {
            // RFC 9113 §8.1: a second HEADERS is the trailer section and must end the stream.
            if (!_fields.EndStream)
            {
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"HEADERS on stream {streamId} without END_STREAM after the request head (RFC 9113 §8.1).");
            }

            if (existing.RequestEnded)
            {
                // The request already ended (reset by the proxy, its exchange not yet finished): ignored, as above.
                return;
            }

            if (_decoder.HeaderListSizeExceeded)
            {
                // The decoder stopped emitting fields past the limit: forwarding the rest would silently drop trailers.
                // Too late for a 431 (the body has gone on), so the stream is reset and its exchange stopped, as the
                // origin side does for a response head over the limit.
                var reason = $"the request's trailer fields exceed {Http2Limits.MaxHeaderListSize} bytes or {Http2Limits.MaxHeaderFieldCount} fields";
                existing.AbortForReset(new HttpProtocolException(reason));
                await ResetStreamAsync(streamId, Http2ErrorCode.ProtocolError, reason);
                return;
            }

            HttpHeaders trailers;
            try
            {
                trailers = Http2HeaderRules.ToHttp1Trailers(fields, streamId);
            }
            catch (Http2StreamException ex)
            {
                // As for a malformed DATA frame: the exchange stops (its request body ends in error, no response is
                // sent on the reset stream) and the origin never gets the request whole.
                existing.AbortForReset(new HttpProtocolException(ex.Message));
                await ResetStreamAsync(streamId, ex.ErrorCode, ex.Message);
                return;
            }

            existing.OnRequestEnded(trailers);
            return;
        }

        await OpenStreamAsync(streamId, fields);
    }

    /// <summary>
    /// RFC 9113 §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a stream error of type
    /// PROTOCOL_ERROR." Only after its block was decoded (the table in step, §4.3). A new stream id is used up (ids only
    /// rise, §5.1.1), so the client's later frames on it meet a closed stream, not an idle one; an open stream's
    /// exchange stops, as for any stream error the proxy finds.
    /// </summary>
    private async ValueTask ResetSelfDependentStreamAsync(int streamId)
    {
        var reason = $"HEADERS on stream {streamId} depends on itself (RFC 9113 §5.3.1).";
        if (_streams.TryGetValue(streamId, out var existing))
        {
            existing.AbortForReset(new HttpProtocolException(reason));
        }
        else if ((streamId & 1) == 1 && streamId > _lastStreamId)
        {
            _lastStreamId = streamId;
        }

        await ResetStreamAsync(streamId, Http2ErrorCode.ProtocolError, reason);
    }

    /// <summary>Whether a decoded field block starts with a pseudo-field: a request head, not a trailer section.</summary>
    private static bool HasPseudoFields(List<HttpHeader> fields) => fields.Count > 0 && fields[0].Name.StartsWith(':');

    private async ValueTask OpenStreamAsync(int streamId, List<HttpHeader> fields)
    {
        // A request is in hand: the connection is set up, its later reads stay inline.
        _client.EndSetUp();

        // RFC 9113 §5.1.1: client streams are odd and rise; a HEADERS on a lower id is for a closed stream.
        if ((streamId & 1) == 0)
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"HEADERS on even stream {streamId} from a client (RFC 9113 §5.1.1).");
        }

        if (streamId <= _lastStreamId)
        {
            throw new Http2ConnectionException(Http2ErrorCode.StreamClosed, $"HEADERS on stream {streamId}, which is closed (RFC 9113 §5.1).");
        }

        _lastStreamId = streamId;
        if (_goAwaySent)
        {
            // RFC 9113 §6.8: streams above the GOAWAY's last id are not processed.
            return;
        }

        // RFC 9113 §5.1.2: "An endpoint that receives a HEADERS frame that causes its advertised concurrent stream limit
        // to be exceeded MUST treat this as a stream error ... of type PROTOCOL_ERROR or REFUSED_STREAM." Streams reset
        // by the client count until their exchange has ended, so resets cannot buy more concurrent work.
        if (_streams.Count >= Http2Limits.MaxConcurrentStreams)
        {
            await ResetStreamAsync(streamId, Http2ErrorCode.RefusedStream, $"more than {Http2Limits.MaxConcurrentStreams} concurrent streams");
            return;
        }

        if (_decoder.HeaderListSizeExceeded)
        {
            await WriteFixedResponseAsync(streamId, 431, $"the request's fields exceed {Http2Limits.MaxHeaderListSize} bytes or {Http2Limits.MaxHeaderFieldCount} fields");
            return;
        }

        Http2RequestFields request;
        try
        {
            request = Http2HeaderRules.ValidateRequest(fields, streamId);
        }
        catch (Http2StreamException ex)
        {
            // RFC 9113 §8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR, never forwarded.
            await ResetStreamAsync(streamId, ex.ErrorCode, ex.Message);
            return;
        }

        if (request.Method == "CONNECT")
        {
            await WriteFixedResponseAsync(streamId, 501, "CONNECT over HTTP/2 (RFC 9113 §8.5) is not supported");
            return;
        }

        if (++_openedStreams > Http2Limits.MaxStreamsPerConnection)
        {
            await GoAwayAsync(Http2ErrorCode.NoError, "stream budget of the connection spent", graceful: true);
        }

        RecycleFinishedStreams();
        if (!_streamPool.TryPop(out var stream))
        {
            stream = new Http2ServerStream(this, RequestBodyPipe);
        }

        stream.Open(streamId, _peerSettings.InitialWindowSize, _fields.EndStream);
        _streams[streamId] = stream;
        stream.Start(request);
    }

    /// <summary>
    /// Stream 1 of an upgraded connection (RFC 7540 §3.2): "The HTTP/1.1 request that is sent prior to upgrade is
    /// assigned a stream identifier of 1 ... Stream 1 is implicitly 'half-closed' from the client toward the server",
    /// its body already whole. Opened before the reader loop reads a frame, so a client HEADERS on stream 1 is one on a
    /// closed stream.
    /// </summary>
    private void OpenUpgradedStream(H2cUpgradeRequest upgrade)
    {
        _lastStreamId = 1;
        _openedStreams = 1;
        var stream = new Http2ServerStream(this, RequestBodyPipe);
        stream.OpenUpgraded(_peerSettings.InitialWindowSize, upgrade.Body);
        _streams[1] = stream;
        stream.Start(upgrade.Request);
    }

    /// <summary>On the reader loop: streams whose task ended go back to the pool (the reader holds no reference to
    /// one from an earlier frame, and they left the stream table before their task ended).</summary>
    private void RecycleFinishedStreams()
    {
        while (_finished.TryDequeue(out var stream))
        {
            if (_streamPool.Count >= MaxPooledStreams)
            {
                stream.Dispose();
            }
            else if (stream.TryRecycle())
            {
                _streamPool.Push(stream);
            }
        }
    }

    private async ValueTask OnDataAsync(Http2Frame frame)
    {
        var length = frame.Header.Length;
        lock (FlowLock)
        {
            // RFC 9113 §6.9: the whole frame, padding included, counts against the connection window.
            _receiveWindow.Consume(length);
        }

        if (length == 0 && !frame.EndStream)
        {
            SpendBudget(_emptyFrames, "empty frame flood (CVE-2019-9518)");
        }

        if (!_streams.TryGetValue(frame.StreamId, out var stream) || stream.RequestEnded)
        {
            // RFC 9113 §6.1: DATA on a stream not open (or half-closed remote) is a STREAM_CLOSED error; its octets still
            // count on the connection, so the credit goes straight back.
            await ReturnConnectionCreditAsync(length);
            if (frame.StreamId > _lastStreamId)
            {
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"DATA on idle stream {frame.StreamId} (RFC 9113 §5.1).");
            }

            // Not counted in the reset budget: the client's DATA raced the end of an exchange the proxy ended.
            await WriteRstStreamAsync(frame.StreamId, Http2ErrorCode.StreamClosed);
            return;
        }

        bool done;
        try
        {
            done = await stream.OnDataAsync(frame.Payload, length, frame.EndStream);
        }
        catch (Http2StreamException ex)
        {
            await ReturnConnectionCreditAsync(length);
            stream.AbortForReset(new HttpProtocolException(ex.Message));
            await ResetStreamAsync(frame.StreamId, ex.ErrorCode, ex.Message);
            return;
        }

        // Padding is never consumed by a reader: its credit returns now (the data's when the pipeline reads it, or at
        // once when the exchange already ended).
        var padding = length - (int)frame.Payload.Length;
        var immediate = done ? length : padding;
        if (immediate > 0)
        {
            await ReturnConnectionCreditAsync(immediate);
        }

        if (padding > 0 && stream.ReturnPadding(padding) is var increment and > 0)
        {
            await WriteWindowUpdateAsync(frame.StreamId, increment);
        }
    }

    private void OnRstStream(Http2Frame frame)
    {
        if (frame.StreamId > _lastStreamId)
        {
            // RFC 9113 §6.4: RST_STREAM on an idle stream is a connection error of type PROTOCOL_ERROR.
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"RST_STREAM on idle stream {frame.StreamId} (RFC 9113 §6.4).");
        }

        // CVE-2023-44487 (rapid reset): each reset costs the proxy an exchange set-up; past the budget the connection goes.
        if (!TryRecordReset())
        {
            const string What = "stream reset (rapid reset, CVE-2023-44487)";
            ProxyLog.Http2BudgetExceeded(_rt.Logger, _flow.Info, What);
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm, What + " budget exceeded");
        }
        if (_streams.TryGetValue(frame.StreamId, out var stream))
        {
            stream.OnReset(frame.ErrorCode);
        }
    }

    private async ValueTask OnSettingsAsync(Http2Frame frame)
    {
        SpendControlBudget("PING/SETTINGS flood (CVE-2019-9515)");
        if (frame.IsAck)
        {
            // We send one SETTINGS: its acknowledgement stops the SETTINGS_TIMEOUT clock.
            _settingsAckTimer?.Dispose();
            return;
        }

        int delta;
        lock (FlowLock)
        {
            delta = _peerSettings.Apply(frame);
            Http2SendWindows.ApplyInitialWindowSizeDelta(delta, _streams);
        }

        // RFC 9113 §6.5.3: "Upon receiving a SETTINGS frame without the ACK flag set, the recipient MUST immediately
        // apply the updated settings and send a SETTINGS frame with the ACK flag set." The encoder's table size applies
        // from the next field block, written after the ACK under the same lock.
        await WriteSettingsAckAsync(_peerSettings.HeaderTableSize);
        if (delta > 0)
        {
            _sendWindows.WakeAll(_streams);
        }
    }

    private async ValueTask OnWindowUpdateAsync(Http2Frame frame)
    {
        SpendBudget(_windowUpdates, "WINDOW_UPDATE flood");
        if (frame.StreamId == 0)
        {
            _sendWindows.OnConnectionWindowUpdate(frame.WindowSizeIncrement, _streams);
            return;
        }

        if (_streams.TryGetValue(frame.StreamId, out var stream))
        {
            if (_sendWindows.OnStreamWindowUpdate(stream.SendWindow, frame.WindowSizeIncrement) is { } ex)
            {
                stream.AbortForReset(new IOException(ex.Message));
                await ResetStreamAsync(frame.StreamId, ex.ErrorCode, ex.Message);
            }
        }
        else if (frame.StreamId > _lastStreamId)
        {
            // RFC 9113 §6.9 / §5.1: WINDOW_UPDATE on an idle stream is a connection error of type PROTOCOL_ERROR.
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"WINDOW_UPDATE on idle stream {frame.StreamId} (RFC 9113 §5.1).");
        }
    }

    private void SpendControlBudget(string what) => SpendBudget(_controlFrames, what);

    private void SpendBudget(RateBudget budget, string what)
    {
        if (!budget.TryRecord(_rt.Time.GetElapsedTime(_startedAt)))
        {
            ProxyLog.Http2BudgetExceeded(_rt.Logger, _flow.Info, what);
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm, what + " budget exceeded");
        }
    }

    /// <summary>A stream's exchange ended: it no longer counts against the concurrency limit.</summary>
    internal void OnStreamDone(Http2ServerStream stream)
    {
        _streams.TryRemove(stream.Id, out _);
        if (!_streams.IsEmpty)
        {
            return;
        }

        if (_goAwaySent)
        {
            // Wakes the reader: a drained connection closes once its last stream is done.
            _client.Input.CancelPendingRead();
            return;
        }

        // The connection is idle from now on: the reader's deadline (armed without a timeout while streams ran) starts
        // the keep-alive timeout without waking the reader. Over an open field block its own timeout stays.
        lock (_deadlineLock)
        {
            if (_armedDeadline == ReaderDeadline.None)
            {
                _idleStartedByStream = 1;
                _readDeadline?.Reset(_rt.Options.Timeouts.IdleKeepAlive);
            }
        }
    }

    /// <summary>The stream's task has ended and will not touch the stream again: the reader loop may reuse it.</summary>
    internal void OnStreamFinished(Http2ServerStream stream)
    {
        if (_closed.IsCancellationRequested)
        {
            // The connection ended (its reader no longer recycles): the stream's timers and sources go now.
            stream.Dispose();
            return;
        }

        _finished.Enqueue(stream);
    }

    /// <summary>Called by a stream for the request body bytes its pipeline consumed: connection credit back when due.</summary>
    internal ValueTask ReturnConnectionCreditAsync(int bytes)
    {
        int increment;
        lock (FlowLock)
        {
            increment = _receiveCredit.OnConsumed(bytes);
        }

        return increment > 0 ? WriteWindowUpdateAsync(0, increment) : default;
    }

    /// <summary>
    /// RST_STREAM for a stream error (RFC 9113 §5.4.2). Our resets count in the reset budget too (MadeYouReset,
    /// CVE-2025-8671: a client that makes the proxy reset its streams instead of resetting them itself); past it the
    /// connection ends with GOAWAY ENHANCE_YOUR_CALM. Most of these resets are sent from a stream's own task, where an
    /// exception would end only that stream, so the connection is failed here instead of thrown for.
    /// </summary>
    internal async ValueTask ResetStreamAsync(int streamId, Http2ErrorCode code, string reason)
    {
        ProxyLog.Http2StreamReset(_rt.Logger, _flow.Info, streamId, code, reason);
        await WriteRstStreamAsync(streamId, code);
        if (code != Http2ErrorCode.NoError && !TryRecordReset())
        {
            const string What = "stream reset (MadeYouReset, CVE-2025-8671)";
            ProxyLog.Http2BudgetExceeded(_rt.Logger, _flow.Info, What);
            await FailAsync(Http2ErrorCode.EnhanceYourCalm, What + " budget exceeded");
        }
    }

    /// <summary>
    /// Counts a reset in the reset budget. The reader counts the client's and streams' tasks count the proxy's, at the
    /// same time: under a lock, so that no count is lost and the budget trips when it should.
    /// </summary>
    private bool TryRecordReset()
    {
        lock (_resets)
        {
            return _resets.TryRecord(_rt.Time.GetElapsedTime(_startedAt));
        }
    }

    /// <summary>The client did not acknowledge our SETTINGS in time: GOAWAY SETTINGS_TIMEOUT (RFC 9113 §6.5.3), then close.</summary>
    private void OnSettingsAckTimeout() => _ = FailFromTimerAsync(Http2ErrorCode.SettingsTimeout, "the SETTINGS acknowledgement", Http2Limits.SettingsAckTimeout);

    /// <summary>A connection error raised by a timer: GOAWAY, then the reader loop stops at its next read.</summary>
    private async Task FailFromTimerAsync(Http2ErrorCode code, string what, TimeSpan timeout)
    {
        ProxyLog.Http2Timeout(_rt.Logger, _flow.Info, 0, what, timeout.TotalSeconds, "GOAWAY", code);
        await FailAsync(code, what + " timed out");
    }

    /// <summary>
    /// A connection error raised off the reader loop (a timer, a stream's task): GOAWAY, then the reader stops at its
    /// next read or frame, and the connection closes.
    /// </summary>
    private async ValueTask FailAsync(Http2ErrorCode code, string reason)
    {
        if (_failed)
        {
            return;
        }

        try
        {
            await GoAwayAsync(code, reason);
        }
        catch (OperationCanceledException)
        {
            // The connection closed meanwhile.
        }

        // Only after the GOAWAY went out: the reader's exit closes the connection, which would cancel that write.
        _failed = true;
        _client.Input.CancelPendingRead();
    }

    /// <summary>The proxy is stopping: GOAWAY with the last stream seen, streams in flight finish (RFC 9113 §6.8).</summary>
    private void OnDraining() => _ = GoAwayAsync(Http2ErrorCode.NoError, "the proxy is stopping", graceful: true).AsTask();

    private async ValueTask GoAwayAsync(Http2ErrorCode code, string reason, bool graceful = false)
    {
        if (!graceful)
        {
            ProxyLog.Http2ConnectionError(_rt.Logger, _flow.Info, code, reason);
        }

        _goAwaySent = true;
        try
        {
            await WriteGoAwayAsync(_lastStreamId, code, graceful ? [] : Encoding.ASCII.GetBytes(reason));
        }
        catch (Exception ex) when (ClientSession.IsConnectionFailure(ex))
        {
            // The client is gone: nobody is left to tell.
        }

        if (graceful)
        {
            _client.Input.CancelPendingRead();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _settingsAckTimer?.Dispose();
        _closed.Dispose();
        _output.Dispose();
        await ValueTask.CompletedTask;
    }
}

/// <summary>Which deadline the reader loop's read runs under.</summary>
internal enum ReaderDeadline
{
    /// <summary>Streams are open: their exchanges have timeouts of their own.</summary>
    None,

    /// <summary>No stream is open: ProxyTimeouts.IdleKeepAlive.</summary>
    Idle,

    /// <summary>A field block is open (HEADERS without END_HEADERS): Http2Limits.FieldBlockTimeout.</summary>
    FieldBlock,
}
