using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Core.Http;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// A scriptable HTTP/2 origin with prior knowledge (h2c) on 127.0.0.1, written with Core's frame reader and writer
/// and HPACK: it sends its SETTINGS, acknowledges the proxy's, and hands each request's HEADERS to the test, which
/// answers, resets or sends GOAWAY. For what a real server cannot be made to do on cue.
/// </summary>
internal sealed class RawH2Origin : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<Connection, int, string, Task> _onRequest;
    private readonly uint? _maxConcurrentStreams;
    private readonly uint? _maxHeaderListSize;
    private readonly bool _answerPings;
    private readonly List<Task> _connections = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private int _accepted;

    /// <param name="onRequest">Called for each HEADERS frame (connection, stream id, :path), on the connection's loop: a
    /// request's, or its trailers' (whose :path is empty).</param>
    /// <param name="maxConcurrentStreams">SETTINGS_MAX_CONCURRENT_STREAMS to advertise, if any.</param>
    /// <param name="answerPings">Whether PINGs get their ACK (false: an origin that stopped answering).</param>
    /// <param name="maxHeaderListSize">SETTINGS_MAX_HEADER_LIST_SIZE to advertise, if any.</param>
    public RawH2Origin(Func<Connection, int, string, Task> onRequest, uint? maxConcurrentStreams = null, bool answerPings = true, uint? maxHeaderListSize = null)
    {
        _onRequest = onRequest;
        _maxConcurrentStreams = maxConcurrentStreams;
        _maxHeaderListSize = maxHeaderListSize;
        _answerPings = answerPings;
        _listener.Start();
        _accept = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Completes when a PING (without ACK) arrives.</summary>
    public TaskCompletionSource PingSeen { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the proxy closes a connection (end of stream on its socket).</summary>
    public TaskCompletionSource ClosedByProxy { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes with the error code of the first GOAWAY the proxy sends.</summary>
    public TaskCompletionSource<Http2ErrorCode> GoAwayReceived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes with the stream and error code of the first RST_STREAM the proxy sends.</summary>
    public TaskCompletionSource<(int StreamId, Http2ErrorCode Code)> ResetReceived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    public Uri Url(string path) => new($"http://localhost:{Port}{path}");

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                var connection = new Connection(new NetworkStream(socket, ownsSocket: true), Interlocked.Increment(ref _accepted));
                lock (_connections)
                {
                    _connections.Add(connection.RunAsync(this));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accept;
        Task[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        await Task.WhenAll(connections);
        _stop.Dispose();
    }

    /// <summary>One accepted connection: its writer is guarded so that the test may answer from any task.</summary>
    internal sealed class Connection(NetworkStream stream, int index) : IHeaderFieldHandler
    {
        private readonly SemaphoreSlim _write = new(1, 1);
        private readonly HpackEncoder _encoder = new();
        private readonly HpackDecoder _decoder = new();
        private string _path = "";

        /// <summary>1 for the first connection accepted, 2 for the next...</summary>
        public int Index { get; } = index;

        public async Task RespondAsync(int streamId, int status, string body, params HttpHeader[] extra)
        {
            var block = new ArrayBufferWriter<byte>();
            _encoder.EncodeBlock([new HttpHeader(":status", status.ToString(System.Globalization.CultureInfo.InvariantCulture)), new HttpHeader("content-length", Encoding.ASCII.GetByteCount(body).ToString(System.Globalization.CultureInfo.InvariantCulture)), .. extra], block);
            await WriteAsync(o =>
            {
                Http2FrameWriter.WriteHeaders(o, streamId, block.WrittenSpan, endStream: false, Http2Settings.DefaultMaxFrameSize);
                Http2FrameWriter.WriteData(o, streamId, Encoding.ASCII.GetBytes(body), endStream: true);
            });
        }

        /// <summary>A head of exactly <paramref name="fields"/> (":status" first), then <paramref name="body"/> in one DATA
        /// frame; an empty body ends the stream with the head.</summary>
        public async Task RespondAsIsAsync(int streamId, byte[] body, params HttpHeader[] fields)
        {
            var block = new ArrayBufferWriter<byte>();
            _encoder.EncodeBlock(fields, block);
            await WriteAsync(o =>
            {
                Http2FrameWriter.WriteHeaders(o, streamId, block.WrittenSpan, endStream: body.Length == 0, Http2Settings.DefaultMaxFrameSize);
                if (body.Length > 0)
                {
                    Http2FrameWriter.WriteData(o, streamId, body, endStream: true);
                }
            });
        }

        /// <summary>A head of exactly <paramref name="fields"/>, <paramref name="body"/> in one DATA frame without
        /// END_STREAM, then <paramref name="trailers"/> as a HEADERS frame that ends the stream (RFC 9113 §8.1).</summary>
        public async Task RespondWithTrailersAsync(int streamId, byte[] body, HttpHeader[] fields, params HttpHeader[] trailers)
        {
            var head = new ArrayBufferWriter<byte>();
            _encoder.EncodeBlock(fields, head);
            var trailer = new ArrayBufferWriter<byte>();
            _encoder.EncodeBlock(trailers, trailer);
            await WriteAsync(o =>
            {
                Http2FrameWriter.WriteHeaders(o, streamId, head.WrittenSpan, endStream: false, Http2Settings.DefaultMaxFrameSize);
                Http2FrameWriter.WriteData(o, streamId, body, endStream: false);
                Http2FrameWriter.WriteHeaders(o, streamId, trailer.WrittenSpan, endStream: true, Http2Settings.DefaultMaxFrameSize);
            });
        }

        public Task GoAwayAsync(int lastStreamId) =>
            WriteAsync(o => Http2FrameWriter.WriteGoAway(o, lastStreamId, Http2ErrorCode.NoError, "going away"u8));

        public Task ResetAsync(int streamId, Http2ErrorCode code) =>
            WriteAsync(o => Http2FrameWriter.WriteRstStream(o, streamId, code));

        /// <summary><paramref name="count"/> RST_STREAM frames for one stream in one write: the first resets it, the
        /// others reset a closed stream (a flood of resets for the proxy to count).</summary>
        public Task ResetManyAsync(int streamId, Http2ErrorCode code, int count) =>
            WriteAsync(o =>
            {
                for (var i = 0; i < count; i++)
                {
                    Http2FrameWriter.WriteRstStream(o, streamId, code);
                }
            });

        private async Task WriteAsync(Action<ArrayBufferWriter<byte>> frames)
        {
            var output = new ArrayBufferWriter<byte>();
            frames(output);
            await _write.WaitAsync();
            try
            {
                await stream.WriteAsync(output.WrittenMemory);
            }
            finally
            {
                _write.Release();
            }
        }

        public async Task RunAsync(RawH2Origin origin)
        {
            try
            {
                await using (stream)
                {
                    var preface = new byte[Http2Preface.Length];
                    await stream.ReadExactlyBoundedAsync(preface);
                    Assert.True(preface.AsSpan().SequenceEqual(Http2Preface.ClientPreface), "the proxy opened with the HTTP/2 preface");
                    var settings = new List<Http2Setting>();
                    if (origin._maxConcurrentStreams is { } max)
                    {
                        settings.Add(new Http2Setting(SettingsParameter.MaxConcurrentStreams, max));
                    }

                    if (origin._maxHeaderListSize is { } listSize)
                    {
                        settings.Add(new Http2Setting(SettingsParameter.MaxHeaderListSize, listSize));
                    }

                    await WriteAsync(o => Http2FrameWriter.WriteSettings(o, settings.ToArray()));
                    var input = new byte[64 * 1024];
                    var have = 0;
                    while (true)
                    {
                        var buffer = new ReadOnlySequence<byte>(input, 0, have);
                        while (Http2FrameReader.TryReadFrame(ref buffer, Http2Settings.DefaultMaxFrameSize, out var frame))
                        {
                            await OnFrameAsync(origin, frame);
                        }

                        var consumed = have - (int)buffer.Length;
                        Buffer.BlockCopy(input, consumed, input, 0, have - consumed);
                        have -= consumed;
                        var n = await stream.ReadAsync(input.AsMemory(have), origin._stop.Token);
                        if (n == 0)
                        {
                            origin.ClosedByProxy.TrySetResult();
                            return;
                        }

                        have += n;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // The proxy closed the connection, or the test ended.
            }
        }

        private async Task OnFrameAsync(RawH2Origin origin, Http2Frame frame)
        {
            switch (frame.Type)
            {
                case FrameType.Settings when !frame.IsAck:
                    await WriteAsync(static o => Http2FrameWriter.WriteSettingsAck(o));
                    break;
                case FrameType.Ping when !frame.IsAck:
                    origin.PingSeen.TrySetResult();
                    if (!origin._answerPings)
                    {
                        break;
                    }

                    var data = frame.PingData;
                    await WriteAsync(o => Http2FrameWriter.WritePing(o, data, ack: true));
                    break;
                case FrameType.GoAway:
                    origin.GoAwayReceived.TrySetResult(frame.ErrorCode);
                    break;
                case FrameType.RstStream:
                    origin.ResetReceived.TrySetResult((frame.StreamId, frame.ErrorCode));
                    break;
                case FrameType.Headers:
                    _path = "";
                    _decoder.Decode(frame.Payload, frame.EndHeaders, this);
                    // The test's answer runs on its own task: it may wait for other streams first.
                    _ = origin._onRequest(this, frame.StreamId, _path);
                    break;
            }
        }

        public void OnHeaderField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed)
        {
            if (name.SequenceEqual(":path"u8))
            {
                _path = Encoding.ASCII.GetString(value);
            }
        }
    }
}
