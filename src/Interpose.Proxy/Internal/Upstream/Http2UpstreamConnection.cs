using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Text;
using Interpose.Core.Http;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;

namespace Interpose.Proxy.Internal;

/// <summary>
/// HTTP/2 (RFC 9113) to an origin: one connection shared by many exchanges, each on a stream of its own
/// (<see cref="Http2UpstreamStream"/>), up to the origin's SETTINGS_MAX_CONCURRENT_STREAMS. Owned by the
/// <see cref="UpstreamPool"/>, which lends its stream slots; closed when the origin goes away, fails, or it sits idle.
/// </summary>
/// <remarks>
/// <code>
///  preface + SETTINGS + WINDOW_UPDATE ─► wait for the origin's SETTINGS ─► pooled
///  reader loop ─┬─ HEADERS (+CONTINUATION) ─► HPACK (bounded) ─► the stream's response head / 1xx / trailers
///               ├─ DATA ─► the stream's response pipe (bounded by its receive window; credit back as it is read)
///               ├─ WINDOW_UPDATE ─► send windows (wakes streams waiting to send request DATA)
///               ├─ SETTINGS / PING ─► ACK (flood budgets), MAX_CONCURRENT_STREAMS, liveness
///               ├─ RST_STREAM ─► the stream fails (REFUSED_STREAM: retryable, RFC 9113 §8.7)
///               └─ GOAWAY ─► no new streams; streams above its last id fail retryable (§6.8)
///  idle (no stream) ─► PING after PingDelay, no ACK within the timeout ─► closed; idle past UpstreamIdle ─► GOAWAY, closed
/// </code>
/// The reader never awaits a stream (DATA go into pipes that do not pause: the windows bound them), so a slow client
/// of one stream never stalls the others. The writer is one lock, as on the client side
/// (<see cref="Http2ServerConnection"/>): HPACK order is wire order, field blocks stay contiguous, and stream ids are
/// assigned under it so they reach the wire in increasing order (RFC 9113 §5.1.1).
/// NOTE: the origin's liveness is the reader loop itself (it sees a close, reset or GOAWAY at once, as the HTTP/1.1 pool's
/// idle read does) plus a PING while idle for peers that vanished without a word; no socket poll.
/// </remarks>
internal sealed class Http2UpstreamConnection : IAsyncDisposable
{
    /// <summary>Streams assumed allowed until the origin's first SETTINGS (RFC 9113 §6.5.2: initially unlimited;
    /// SocketsHttpHandler assumes 100, its InitialMaxConcurrentStreams). Only a bound until that SETTINGS arrives,
    /// which <see cref="StartAsync"/> waits for.</summary>
    private const int InitialMaxConcurrentStreams = 100;

    /// <summary>Idle time (no stream open) before a liveness PING: 30 s, half the pool's default idle time
    /// (ProxyTimeouts.UpstreamIdle, 60 s), so a dead peer is found while the connection may still be rented.
    /// mitmproxy pings after 58 s, SocketsHttpHandler not at all by default.</summary>
    public static readonly TimeSpan PingDelay = TimeSpan.FromSeconds(30);

    /// <summary>How long a liveness PING may wait for its ACK: 10 s, as the TLS handshake timeout (a round trip that
    /// takes longer is a dead connection for a proxy); SocketsHttpHandler's KeepAlivePingTimeout defaults to 20 s.</summary>
    public static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(10);

    private readonly ProxyRuntime _rt;
    private readonly UpstreamConnection _socket;
    private readonly ConcurrentDictionary<int, Http2UpstreamStream> _streams = new();
    private readonly HpackDecoder _decoder = new();
    private readonly Http2HeaderBlockTracker _blocks = new();
    private readonly Http2FieldCollector _fields = new();
    private readonly Http2Settings _peerSettings = new();
    private readonly RateBudget _controlFrames = new(Http2Limits.ControlFrameBudgetPerWindow, Http2Limits.ControlFrameBudgetWindow);
    private readonly RateBudget _windowUpdates = new(Http2Limits.WindowUpdateBudgetPerWindow, Http2Limits.ControlFrameBudgetWindow);
    private readonly RateBudget _emptyFrames = new(Http2Limits.EmptyFrameBudgetPerWindow, Http2Limits.EmptyFrameBudgetWindow);
    private readonly RateBudget _resets = new(Http2Limits.OriginResetBudgetPerWindow, Http2Limits.ResetBudgetWindow);
    private readonly Http2FrameOutput _output;
    private readonly CancellationTokenSource _closed = new();

    // The proxy's abort cancels _closed through this registration, given back when the connection closes: a linked
    // source would hold its registration on the proxy-wide token until disposed, one per origin connection ever made.
    private readonly CancellationTokenRegistration _aborted;
    private readonly TaskCompletionSource _firstSettings = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _startedAt;

    // Send side (request DATA): the connection window, credited by the origin's WINDOW_UPDATE on stream 0, and the streams' waits.
    private readonly Http2SendWindows _sendWindows = new();

    // Receive side (response DATA): debited by the reader, credited back as the streams' readers consume.
    private readonly FlowWindow _receiveWindow;
    private readonly ReceiveCredit _receiveCredit;

    // The field block being read came in a HEADERS frame that depends on itself: decoded, then its stream failed.
    private bool _blockDependsOnItself;

    private int _nextStreamId = 1;
    private int _reserved;
    private long _maxConcurrent = InitialMaxConcurrentStreams;
    private int _streamsOpened;
    private volatile bool _goingAway;
    private volatile bool _pingOutstanding;
    private Task _reader = Task.CompletedTask;
    private int _disposed;

    private Http2UpstreamConnection(UpstreamConnection socket, ProxyRuntime runtime)
    {
        _socket = socket;
        _rt = runtime;
        _startedAt = runtime.Time.GetTimestamp();
        IdleSince = _startedAt;
        _aborted = runtime.Aborted.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _closed);
        _output = new Http2FrameOutput(socket.Transport, _closed.Token);
        StreamWindowSize = runtime.Options.UpstreamHttp2StreamWindowSize;
        _receiveWindow = new FlowWindow(0, runtime.Options.UpstreamHttp2ConnectionWindowSize);
        _receiveCredit = new ReceiveCredit(_receiveWindow, runtime.Options.UpstreamHttp2ConnectionWindowSize / 2);
    }

    public UpstreamKey Key => _socket.Key;

    public ServerConnection Info => _socket.Info;

    internal ProxyRuntime Runtime => _rt;

    /// <summary>Our SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window.</summary>
    internal int StreamWindowSize { get; }

    /// <summary>Guards every flow-control window of the connection and its streams.</summary>
    internal object FlowLock => _sendWindows.FlowLock;

    /// <summary>The origin's SETTINGS_MAX_FRAME_SIZE: the largest DATA payload we may send.</summary>
    internal int PeerMaxFrameSize => _peerSettings.MaxFrameSize;

    /// <summary>The origin's SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2); <see langword="null"/>: unlimited.</summary>
    internal uint? PeerMaxHeaderListSize
    {
        get
        {
            lock (FlowLock)
            {
                return _peerSettings.MaxHeaderListSize;
            }
        }
    }

    /// <summary>Cancelled when the connection ends.</summary>
    internal CancellationToken Closed => _closed.Token;

    /// <summary>True once it takes no new streams (GOAWAY either way, a failure, or closed).</summary>
    public bool IsGoingAway => _goingAway || _closed.IsCancellationRequested;

    /// <summary>True when the connection was closed (the pool drops it).</summary>
    public bool IsClosed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Streams opened so far: a stream on a connection that carried one before is a reused connection.</summary>
    public int StreamsOpened => Volatile.Read(ref _streamsOpened);

    /// <summary>When its last stream ended (or it opened), as a <see cref="TimeProvider"/> timestamp.</summary>
    public long IdleSince { get; private set; }

    /// <summary>The origin's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited: <see cref="long.MaxValue"/>).</summary>
    public long MaxConcurrentStreams => Interlocked.Read(ref _maxConcurrent);

    /// <summary>
    /// Starts HTTP/2 on an open origin connection (TLS with ALPN h2, or plain with prior knowledge): our preface, then
    /// the origin's SETTINGS, waited for under the TLS handshake timeout so the stream limit is known before use.
    /// </summary>
    /// <returns>The connection, or the failure as an <see cref="ExchangeError"/> (the socket is then closed).</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async ValueTask<(Http2UpstreamConnection? Connection, ExchangeError? Error)> StartAsync(UpstreamConnection socket, ProxyRuntime runtime, CancellationToken cancellationToken)
    {
        var connection = new Http2UpstreamConnection(socket, runtime);
        using var timeout = new TimeoutScope(runtime.Time, runtime.Options.Timeouts.TlsHandshake, cancellationToken);
        try
        {
            await connection.WritePrefaceAsync();
            connection._reader = connection.ReadLoopAsync();
            await connection._firstSettings.Task.WaitAsync(timeout.Token);
            ProxyLog.Http2UpstreamOpened(runtime.Logger, socket.Key.Host, socket.Key.Port, connection.MaxConcurrentStreams);
            return (connection, null);
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or Http2ConnectionException or ObjectDisposedException
            || (ex is OperationCanceledException && timeout.TimedOut && !cancellationToken.IsCancellationRequested))
        {
            await connection.DisposeAsync();
            var timedOut = ex is OperationCanceledException;
            return (null, Failures.Describe(ExchangePhase.Connect, timedOut ? new TimeoutException("no HTTP/2 SETTINGS from the origin", ex) : ex, timedOut));
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Reserves a stream slot if the origin's limit allows one; the stream's HEADERS give it its id.</summary>
    public Http2UpstreamStream? TryOpenStream()
    {
        lock (FlowLock)
        {
            if (IsGoingAway || _reserved >= _maxConcurrent)
            {
                return null;
            }

            _reserved++;
        }

        Interlocked.Increment(ref _streamsOpened);
        return new Http2UpstreamStream(this);
    }

    /// <summary>A stream ended (or was never opened): its slot is free.</summary>
    internal void ReleaseStream(Http2UpstreamStream stream)
    {
        bool idle;
        lock (FlowLock)
        {
            if (stream.Id != 0)
            {
                _streams.TryRemove(stream.Id, out _);
            }

            _reserved--;
            idle = _reserved == 0;
        }

        if (idle)
        {
            IdleSince = _rt.Time.GetTimestamp();
            if (_goingAway)
            {
                // RFC 9113 §6.8: after GOAWAY, the connection closes once its last stream is done.
                _ = CloseQuietlyAsync("GOAWAY received and the last stream ended");
            }
            else
            {
                // Wakes the reader so it arms the idle PING.
                _socket.Transport.Input.CancelPendingRead();
            }
        }
    }

    // ───────────────────────────── reader ─────────────────────────────

    private async Task ReadLoopAsync()
    {
        var input = _socket.Transport.Input;
        using var idle = new TimeoutScope(_rt.Time);
        string reason = "the origin closed it";
        Exception? failure = null;
        try
        {
            while (true)
            {
                bool idleArmed;
                lock (FlowLock)
                {
                    // Idle once a stream came and went: a new connection is opened for a stream about to start.
                    idleArmed = _reserved == 0 && _streamsOpened > 0;
                }

                if (idleArmed)
                {
                    idle.Arm(_pingOutstanding ? PingTimeout : PingDelay, _closed.Token);
                }

                ReadResult result;
                try
                {
                    result = await input.ReadAsync(idleArmed ? idle.Token : _closed.Token);
                }
                catch (OperationCanceledException) when (idle.TimedOut && !_closed.IsCancellationRequested)
                {
                    idle.Disarm();
                    if (!await OnIdleTimeoutAsync())
                    {
                        reason = _pingOutstanding ? "no PING ACK (the origin stopped answering)" : "idle";
                        return;
                    }

                    continue;
                }

                if (idleArmed)
                {
                    idle.Disarm();
                }

                var buffer = result.Buffer;
                try
                {
                    while (Http2FrameReaderFrame(ref buffer, out var frame))
                    {
                        await OnFrameAsync(frame);
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
            }
        }
        catch (Http2ConnectionException ex)
        {
            reason = $"{ex.ErrorCode}: {ex.Message}";
            failure = ex;
            ProxyLog.Http2UpstreamConnectionError(_rt.Logger, Key.Host, Key.Port, ex.ErrorCode, ex.Message);
            _goingAway = true;
            try
            {
                await _output.WriteGoAwayAsync(0, ex.ErrorCode, Encoding.ASCII.GetBytes(ex.Message));
            }
            catch (Exception write) when (IsConnectionFailure(write))
            {
                // The origin is gone too.
            }
        }
        catch (Exception ex) when (IsConnectionFailure(ex) || (ex is InvalidOperationException && IsClosed))
        {
            // InvalidOperationException: the connection was closed (its transport's reader completed) while the loop
            // handled a frame, and the loop's AdvanceTo found the reader gone.
            reason = ex.Message;
            failure = ex;
        }
        catch (Exception ex)
        {
            // A bug, not the origin's doing: logged with its stack; the streams fail with it and the connection closes.
            ProxyLog.Http2UpstreamCrashed(_rt.Logger, Key.Host, Key.Port, ex);
            reason = "internal error: " + ex.Message;
            failure = ex;
        }
        finally
        {
            _firstSettings.TrySetException(failure ?? new IOException("the origin closed the connection before its SETTINGS"));
            await CloseCoreAsync(reason, failure);
        }
    }

    /// <summary>Frame reader wrapper: a stream error in a frame's own checks resets that stream only.</summary>
    private bool Http2FrameReaderFrame(ref ReadOnlySequence<byte> buffer, out Http2Frame frame)
    {
        while (true)
        {
            try
            {
                return Http2FrameReader.TryReadFrame(ref buffer, Http2Limits.MaxFrameSize, out frame);
            }
            catch (Http2StreamException ex)
            {
                // The frame was consumed; only its stream fails (RFC 9113 §5.4.2).
                if (_streams.TryGetValue(ex.StreamId, out var stream))
                {
                    stream.Fail(new IOException(ex.Message), ex.ErrorCode);
                }
            }
        }
    }

    /// <summary>No stream for a while: close when idle past the pool's time, else PING (or give up on an unanswered one).</summary>
    private async ValueTask<bool> OnIdleTimeoutAsync()
    {
        if (_rt.Time.GetElapsedTime(IdleSince) >= _rt.Options.Timeouts.UpstreamIdle)
        {
            _goingAway = true;
            await _output.WriteGoAwayAsync(0, Http2ErrorCode.NoError, []);
            return false;
        }

        if (_pingOutstanding)
        {
            return false;
        }

        _pingOutstanding = true;
        await _output.WritePingAsync(PingPayload, ack: false);
        return true;
    }

    /// <summary>The opaque data of our liveness PINGs ("ipose").</summary>
    private const ulong PingPayload = 0x69706F7365;

    private async ValueTask OnFrameAsync(Http2Frame frame)
    {
        if (!_firstSettings.Task.IsCompleted && frame.Type != FrameType.Settings)
        {
            // RFC 9113 §3.4: "The server connection preface consists of a potentially empty SETTINGS frame ... that MUST
            // be the first frame the server sends".
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"{frame.Type} before the origin's SETTINGS (RFC 9113 §3.4).");
        }

        // RFC 9113 §4.3: a field block is contiguous; CONTINUATION floods are bounded here.
        var blockEnded = _blocks.OnFrame(frame);
        switch (frame.Type)
        {
            case FrameType.Headers:
            case FrameType.Continuation:
                OnFieldBlockFragment(frame, blockEnded);
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
                SpendBudget(_controlFrames, "PING/SETTINGS flood (CVE-2019-9512)");
                if (frame.IsAck)
                {
                    _pingOutstanding = false;
                }
                else
                {
                    // RFC 9113 §6.7: a PING without ACK is answered with an identical payload.
                    await _output.WritePingAsync(frame.PingData, ack: true);
                }

                break;
            case FrameType.WindowUpdate:
                OnWindowUpdate(frame);
                break;
            case FrameType.GoAway:
                OnGoAway(frame);
                break;
            case FrameType.PushPromise:
                // RFC 9113 §8.4: we sent SETTINGS_ENABLE_PUSH 0; "A client ... MUST treat the receipt of a PUSH_PROMISE
                // frame as a connection error of type PROTOCOL_ERROR" when push is disabled (§6.5.2).
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "PUSH_PROMISE with push disabled (RFC 9113 §6.5.2).");
            default:
                // PRIORITY (deprecated, RFC 9113 §5.3.2) and unknown types (§5.5) are ignored.
                break;
        }
    }

    private void OnFieldBlockFragment(Http2Frame frame, bool blockEnded)
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

        // The decoder sees every block, wanted or not, so its table stays in step with the origin's (RFC 9113 §4.3).
        _decoder.Decode(frame.Payload, blockEnded, _fields);
        if (!blockEnded)
        {
            return;
        }

        var streamId = _fields.StreamId;
        var fields = _fields.Take();
        if (!_streams.TryGetValue(streamId, out var stream))
        {
            if (streamId >= _nextStreamId || (streamId & 1) == 0)
            {
                // RFC 9113 §5.1: HEADERS on a stream we never opened (push is off) is a connection error.
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"HEADERS on stream {streamId}, which the proxy did not open (RFC 9113 §5.1).");
            }

            return;
        }

        if (_blockDependsOnItself)
        {
            // RFC 9113 §5.3.1: a stream error of type PROTOCOL_ERROR, raised once the block was decoded (§4.3).
            stream.Fail(new IOException($"the origin's HEADERS on stream {streamId} depends on itself (RFC 9113 §5.3.1)"), Http2ErrorCode.ProtocolError);
            return;
        }

        if (_decoder.HeaderListSizeExceeded)
        {
            // Our SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2) bounds what an origin can make the proxy hold.
            stream.Fail(new IOException($"the origin's response fields exceed {Http2Limits.MaxHeaderListSize} bytes or {Http2Limits.MaxHeaderFieldCount} fields"), Http2ErrorCode.ProtocolError);
            return;
        }

        // A response head is in hand: the connection is set up, its later reads stay inline.
        _socket.Transport.EndSetUp();
        stream.OnHeaders(fields, _fields.EndStream);
    }

    private void OnRstStream(Http2Frame frame)
    {
        if (frame.StreamId >= _nextStreamId)
        {
            // RFC 9113 §6.4: "If a RST_STREAM frame identifying an idle stream is received, the recipient MUST treat this
            // as a connection error ... of type PROTOCOL_ERROR."
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"RST_STREAM on idle stream {frame.StreamId} (RFC 9113 §6.4).");
        }

        if (frame.ErrorCode != Http2ErrorCode.NoError)
        {
            // An origin that resets streams at will (any code but NO_ERROR, which RFC 9113 §8.1 gives a server that
            // answered before the request ended, and fails nothing) is treated as the client side treats rapid reset:
            // past the budget, GOAWAY ENHANCE_YOUR_CALM and the connection leaves the pool.
            SpendBudget(_resets, "RST_STREAM flood");
        }

        if (_streams.TryGetValue(frame.StreamId, out var reset))
        {
            reset.OnReset(frame.ErrorCode);
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

        if (!_streams.TryGetValue(frame.StreamId, out var stream))
        {
            if (frame.StreamId >= _nextStreamId)
            {
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"DATA on idle stream {frame.StreamId} (RFC 9113 §5.1).");
            }

            // A stream the proxy already ended (reset): its octets still count on the connection (RFC 9113 §6.9).
            await ReturnConnectionCreditAsync(length);
            return;
        }

        var unread = stream.OnData(frame.Payload, length, frame.EndStream);
        if (unread > 0)
        {
            // Padding, or DATA of a stream nobody reads any more: the credit returns now.
            await ReturnConnectionCreditAsync(unread);
        }
    }

    private async ValueTask OnSettingsAsync(Http2Frame frame)
    {
        SpendBudget(_controlFrames, "PING/SETTINGS flood (CVE-2019-9515)");
        if (frame.StreamId != 0)
        {
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "SETTINGS on a stream (RFC 9113 §6.5).");
        }

        if (frame.IsAck)
        {
            return;
        }

        int delta;
        lock (FlowLock)
        {
            delta = _peerSettings.Apply(frame);
            // RFC 9113 §6.5.2: SETTINGS_MAX_CONCURRENT_STREAMS "Initially, there is no limit to this value"; a SETTINGS
            // without it keeps what was set before.
            _maxConcurrent = _peerSettings.MaxConcurrentStreams is { } max ? max : _firstSettings.Task.IsCompleted ? _maxConcurrent : long.MaxValue;
            Http2SendWindows.ApplyInitialWindowSizeDelta(delta, _streams);
        }

        // RFC 9113 §6.5.3: apply, then acknowledge; the encoder's table size applies from its next block.
        await _output.WriteSettingsAckAsync(_peerSettings.HeaderTableSize);
        _firstSettings.TrySetResult();
        if (delta > 0)
        {
            _sendWindows.WakeAll(_streams);
        }
    }

    private void OnWindowUpdate(Http2Frame frame)
    {
        SpendBudget(_windowUpdates, "WINDOW_UPDATE flood");
        if (frame.StreamId == 0)
        {
            _sendWindows.OnConnectionWindowUpdate(frame.WindowSizeIncrement, _streams);
            return;
        }

        if (_streams.TryGetValue(frame.StreamId, out var stream)
            && _sendWindows.OnStreamWindowUpdate(stream.SendWindow, frame.WindowSizeIncrement) is { } ex)
        {
            stream.Fail(new IOException(ex.Message), ex.ErrorCode);
        }
    }

    private void OnGoAway(Http2Frame frame)
    {
        var last = frame.LastStreamId;
        var debug = Encoding.ASCII.GetString(frame.Payload.Length > 8 ? frame.Payload.Slice(8).ToArray() : []);
        ProxyLog.Http2UpstreamGoAway(_rt.Logger, Key.Host, Key.Port, frame.ErrorCode, last, debug);
        _goingAway = true;
        foreach (var stream in _streams.Values)
        {
            if (stream.Id > last)
            {
                // RFC 9113 §6.8: streams above the last id "were not or will not be processed": safe to retry anywhere.
                stream.FailRetryable($"GOAWAY {frame.ErrorCode} with last stream {last}");
            }
        }

        bool idle;
        lock (FlowLock)
        {
            idle = _reserved == 0;
        }

        if (idle)
        {
            _ = CloseQuietlyAsync("GOAWAY received");
        }
    }

    private void SpendBudget(RateBudget budget, string what)
    {
        if (!budget.TryRecord(_rt.Time.GetElapsedTime(_startedAt)))
        {
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm, what + " budget exceeded by the origin");
        }
    }

    // ───────────────────────────── writer ─────────────────────────────

    /// <summary>The client preface (RFC 9113 §3.4): the magic octets, our SETTINGS, then the connection window raised.</summary>
    private ValueTask WritePrefaceAsync() =>
        _output.WriteFramesAsync((StreamWindowSize, Raise: _rt.Options.UpstreamHttp2ConnectionWindowSize - Http2Settings.DefaultInitialWindowSize), static (o, s) =>
        {
            o.Write(Http2Preface.ClientPreface);
            Http2FrameWriter.WriteSettings(o,
            [
                // RFC 9113 §8.4: the proxy never accepts pushes (it would have nowhere to send them).
                new Http2Setting(SettingsParameter.EnablePush, 0),
                new Http2Setting(SettingsParameter.InitialWindowSize, (uint)s.StreamWindowSize),
                new Http2Setting(SettingsParameter.MaxFrameSize, Http2Limits.MaxFrameSize),
                new Http2Setting(SettingsParameter.MaxHeaderListSize, Http2Limits.MaxHeaderListSize),
            ]);
            if (s.Raise > 0)
            {
                Http2FrameWriter.WriteWindowUpdate(o, 0, s.Raise);
            }
        });

    /// <summary>
    /// The request's field block, which also opens the stream: its id is assigned as the block is queued, so ids reach
    /// the wire in increasing order (RFC 9113 §5.1.1).
    /// </summary>
    /// <exception cref="Http2RefusedException">The connection is going away: the request was never sent.</exception>
    internal ValueTask WriteRequestHeadersAsync(Http2UpstreamStream stream, List<HttpHeader> fields, bool endStream, CancellationToken cancellationToken) =>
        _output.WriteHeadersAsync((this, stream), static s => s.Item1.OpenStream(s.stream), fields, endStream, _peerSettings.MaxFrameSize, cancellationToken);

    /// <summary>Gives <paramref name="stream"/> the next id; under the frame output's append lock.</summary>
    private int OpenStream(Http2UpstreamStream stream)
    {
        lock (FlowLock)
        {
            if (IsGoingAway || _nextStreamId > int.MaxValue - 2)
            {
                throw new Http2RefusedException("the origin connection is going away; the request was not sent");
            }

            var id = _nextStreamId;
            _nextStreamId += 2;
            stream.Open(id, _peerSettings.InitialWindowSize);
            _streams[id] = stream;
            return id;
        }
    }

    /// <summary>Trailers: a field block with END_STREAM (RFC 9113 §8.1).</summary>
    internal ValueTask WriteTrailersAsync(int streamId, List<HttpHeader> fields, CancellationToken cancellationToken) =>
        _output.WriteHeadersAsync(streamId, fields, endStream: true, _peerSettings.MaxFrameSize, cancellationToken);

    /// <summary>One DATA frame whose send credit the caller already took.</summary>
    internal ValueTask WriteDataAsync(int streamId, ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken) =>
        _output.WriteDataAsync(streamId, data, endStream, cancellationToken);

    /// <summary>Waits for credit in both send windows (RFC 9113 §6.9.1), then takes up to <paramref name="wanted"/>
    /// octets; 0 once the stream failed or was reset.</summary>
    internal ValueTask<int> TakeSendCreditAsync(Http2UpstreamStream stream, int wanted, CancellationToken cancellationToken) =>
        _sendWindows.TakeAsync(stream.SendWindow, wanted, Timeout.InfiniteTimeSpan, _rt.Time, cancellationToken);

    internal ValueTask WriteWindowUpdateAsync(int streamId, int increment) => _output.WriteWindowUpdateAsync(streamId, increment);

    internal ValueTask WriteRstStreamAsync(int streamId, Http2ErrorCode code) => _output.WriteRstStreamAsync(streamId, code);

    /// <summary>Response octets a stream's reader consumed (or that nobody will read): connection credit back when due.</summary>
    internal ValueTask ReturnConnectionCreditAsync(int bytes)
    {
        if (bytes <= 0 || IsClosed)
        {
            return default;
        }

        int increment;
        lock (FlowLock)
        {
            increment = _receiveCredit.OnConsumed(bytes);
        }

        return increment > 0 ? WriteWindowUpdateAsync(0, increment) : default;
    }

    // ───────────────────────────── closing ─────────────────────────────

    private async Task CloseQuietlyAsync(string reason)
    {
        try
        {
            await CloseCoreAsync(reason, null);
        }
        catch (Exception ex) when (IsConnectionFailure(ex))
        {
            // Closing a connection that already failed.
        }
    }

    private async ValueTask CloseCoreAsync(string reason, Exception? failure)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _goingAway = true;
        ProxyLog.Http2UpstreamClosed(_rt.Logger, Key.Host, Key.Port, reason);

        // The streams fail before the connection's token is cancelled: a request body's sender waiting for credit is
        // woken by its stream's failure (why the connection closed) rather than by a bare cancellation.
        foreach (var stream in _streams.Values)
        {
            // Streams the origin never saw end retryable (OpenStream refuses them: RFC 9113 §8.7, "not processed"); the
            // others fail (the pipeline retries only what is safe). When the origin broke the protocol or a budget, the
            // streams it holds may have been processed and the connection did not merely drop: no retry, a 502 that
            // says why.
            stream.Fail(failure is Http2ConnectionException misbehaved
                ? new Http2OriginMisbehavedException($"the HTTP/2 origin {Key.Host}:{Key.Port} misbehaved ({misbehaved.ErrorCode}: {misbehaved.Message}); the proxy closed the connection with GOAWAY {misbehaved.ErrorCode}", misbehaved)
                : new IOException($"the HTTP/2 connection to {Key.Host}:{Key.Port} closed: {failure?.Message ?? reason}"), null);
        }

        await _closed.CancelAsync();
        // Dispose, not DisposeAsync: when the proxy's abort is what closes the connection, this may run inside that very
        // callback, which Dispose does not wait for on its own thread.
        _aborted.Dispose();
        await _socket.DisposeAsync();
        _output.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await CloseCoreAsync("closed by the proxy", null);
        try
        {
            await _reader;
        }
        catch (Exception ex) when (IsConnectionFailure(ex))
        {
            // The loop ended on the closed transport.
        }
    }

    private static bool IsConnectionFailure(Exception ex) =>
        ex is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or OperationCanceledException;
}

/// <summary>
/// The proxy ended the origin connection because the origin broke HTTP/2 or one of its budgets (a connection error,
/// RFC 9113 §5.4.1, e.g. ENHANCE_YOUR_CALM for a RST_STREAM flood). Not an <see cref="IOException"/>: a stream the
/// origin may have processed is not retried (RFC 9113 §8.7); the client gets a 502 with this reason.
/// </summary>
internal sealed class Http2OriginMisbehavedException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// The origin did not process the request (RFC 9113 §8.7: REFUSED_STREAM, or a stream above a GOAWAY's last id, or a
/// stream never sent): it may be retried on another stream or connection, whatever its method.
/// </summary>
internal sealed class Http2RefusedException(string message) : IOException(message);
