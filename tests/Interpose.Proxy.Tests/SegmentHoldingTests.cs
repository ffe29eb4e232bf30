using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Interpose.Core.Http;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests;

/// <summary>
/// A bulk body's TLS records leave in full TCP segments (Linux TCP_CORK) while more input is ready, and nothing is
/// ever held back while the relay waits for input or after it ends.
/// </summary>
public sealed class SegmentHoldingTests
{
    /// <summary>tcp(7): IPPROTO_TCP, TCP_CORK.</summary>
    private const int IpProtoTcp = 6;
    private const int TcpCork = 3;

    /// <summary>Not a multiple of any loopback segment size, so the last bytes only leave when released.</summary>
    private const int FirstPart = 200_000;
    private const int SecondPart = 100_000;

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [LinuxFact]
    public async Task A_large_body_is_held_in_full_segments_and_released_before_the_relay_waits_for_input()
    {
        using var deadline = new CancellationTokenSource(Deadline);
        await using var pair = await SocketPair.CreateAsync();
        var body = RandomBytes(FirstPart + SecondPart);
        var source = await SourceWithAsync(body.AsMemory(0, FirstPart), deadline.Token);
        var sink = new CorkRecordingSink(pair.Sender);

        var relay = RelayAsync(source, new BodyFraming(BodyKind.ContentLength, body.Length), sink, pair, deadline.Token).AsTask();

        // Everything written so far arrives although the body is unfinished: the relay released what it held back
        // before waiting for the rest, and the socket is no longer corked while it waits.
        var received = new byte[body.Length];
        await pair.Receiver.ReadExactlyAsync(received.AsMemory(0, FirstPart), deadline.Token);
        Assert.Equal(0, CorkOf(pair.Sender.Socket));
        Assert.False(relay.IsCompleted);

        var rest = pair.Receiver.ReadExactlyAsync(received.AsMemory(FirstPart), deadline.Token).AsTask();
        await source.Writer.WriteAsync(body.AsMemory(FirstPart), deadline.Token);
        Assert.Equal(body.Length, await relay);
        await rest;

        Assert.Equal(body, received);
        Assert.Contains(1, sink.CorkAtWrites);
        Assert.Equal(0, CorkOf(pair.Sender.Socket));
    }

    [LinuxFact]
    public async Task A_small_body_is_never_held()
    {
        using var deadline = new CancellationTokenSource(Deadline);
        await using var pair = await SocketPair.CreateAsync();
        var body = RandomBytes(10_000);
        var source = await SourceWithAsync(body, deadline.Token);
        var sink = new CorkRecordingSink(pair.Sender);

        Assert.Equal(body.Length, await RelayAsync(source, new BodyFraming(BodyKind.ContentLength, body.Length), sink, pair, deadline.Token));

        Assert.NotEmpty(sink.CorkAtWrites);
        Assert.All(sink.CorkAtWrites, cork => Assert.Equal(0, cork));
    }

    [LinuxFact]
    public async Task A_body_cut_short_releases_what_was_held()
    {
        using var deadline = new CancellationTokenSource(Deadline);
        await using var pair = await SocketPair.CreateAsync();
        var source = await SourceWithAsync(RandomBytes(FirstPart), deadline.Token);
        await source.Writer.CompleteAsync();
        var sink = new CorkRecordingSink(pair.Sender);
        var received = pair.Receiver.ReadExactlyAsync(new byte[FirstPart], deadline.Token).AsTask();

        await Assert.ThrowsAsync<BodyTruncatedException>(async () =>
            await RelayAsync(source, new BodyFraming(BodyKind.ContentLength, FirstPart + SecondPart), sink, pair, deadline.Token));
        await received;

        Assert.Contains(1, sink.CorkAtWrites);
        Assert.Equal(0, CorkOf(pair.Sender.Socket));
    }

    [LinuxFact]
    public async Task A_large_chunked_body_passed_through_is_held_too_and_released_at_its_end()
    {
        using var deadline = new CancellationTokenSource(Deadline);
        await using var pair = await SocketPair.CreateAsync();
        var chunk = RandomBytes(FirstPart);
        var framed = new ArrayBufferWriter<byte>();
        ChunkedEncoder.WriteChunkHeader(chunk.Length, framed);
        framed.Write(chunk);
        ChunkedEncoder.WriteChunkTerminator(framed);
        ChunkedEncoder.WriteLastChunk(null, framed);
        var source = await SourceWithAsync(framed.WrittenMemory, deadline.Token);
        var sink = new CorkRecordingSink(pair.Sender);
        var received = new byte[framed.WrittenCount];
        var reading = pair.Receiver.ReadExactlyAsync(received, deadline.Token).AsTask();

        Assert.Equal(chunk.Length, await RelayAsync(source, BodyFraming.Chunked, sink, pair, deadline.Token));
        await reading;
        Assert.Equal(framed.WrittenMemory.ToArray(), received);
        Assert.Contains(1, sink.CorkAtWrites);
        Assert.Equal(0, CorkOf(pair.Sender.Socket));
    }

    /// <summary>A source pipe that already holds <paramref name="bytes"/> (no back-pressure: the test writes ahead).</summary>
    private static async Task<Pipe> SourceWithAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        var source = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        await source.Writer.WriteAsync(bytes, cancellationToken);
        return source;
    }

    private static ValueTask<long> RelayAsync(Pipe source, BodyFraming framing, IBodySink sink, SocketPair pair, CancellationToken cancellationToken) =>
        BodyReader.RelayAsync(source.Reader, framing, new ChunkedDecoder(Http1Limits.Default), sink, raw: true, pair.Sender, cancellationToken);

    private static byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }

    private static int CorkOf(Socket? socket)
    {
        Span<byte> value = stackalloc byte[sizeof(int)];
        socket!.GetRawSocketOption(IpProtoTcp, TcpCork, value);
        return BitConverter.ToInt32(value);
    }

    /// <summary>Writes to the transport and notes whether its socket was corked at each write.</summary>
    private sealed class CorkRecordingSink(Transport destination) : IBodySink
    {
        private readonly StreamSink _inner = new(destination.Stream);

        public List<int> CorkAtWrites { get; } = [];

        public ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
        {
            CorkAtWrites.Add(CorkOf(destination.Socket));
            return _inner.WriteAsync(data, cancellationToken);
        }

        public ValueTask CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken) => _inner.CompleteAsync(trailers, cancellationToken);
    }

    /// <summary>Two connected loopback sockets: the proxy's side as a <see cref="Transport"/>, and its peer.</summary>
    private sealed class SocketPair : IAsyncDisposable
    {
        private readonly Socket _receiverSocket;

        private SocketPair(Transport sender, Socket receiver)
        {
            Sender = sender;
            _receiverSocket = receiver;
            Receiver = new NetworkStream(receiver, ownsSocket: false);
        }

        public Transport Sender { get; }

        public NetworkStream Receiver { get; }

        public static async Task<SocketPair> CreateAsync()
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            var receiver = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await receiver.ConnectAsync(listener.LocalEndPoint!);
            var accepted = await listener.AcceptAsync();
            return new SocketPair(new Transport(accepted, new NetworkStream(accepted, ownsSocket: false)), receiver);
        }

        public async ValueTask DisposeAsync()
        {
            await Sender.DisposeAsync();
            await Receiver.DisposeAsync();
            _receiverSocket.Dispose();
        }
    }
}
