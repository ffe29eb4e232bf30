using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Reads one message body off a connection's pipe, exactly as far as its framing says (RFC 9112 §6.3), and hands the
/// bytes to a sink as they arrive: nothing is held beyond the pipe's own buffer, so a slow receiver slows the
/// sender (back-pressure) and memory stays flat whatever the body's size.
/// </summary>
internal static class BodyReader
{
    /// <summary>
    /// A body longer than this is relayed with <see cref="Transport.HoldSegments"/> on the receiving side: 64 KiB is
    /// four full TLS records and one loopback TCP segment; for less, the two extra system calls gain nothing.
    /// </summary>
    private const long HoldSegmentsAfterBytes = 64 * 1024;

    /// <summary>Relays a body; returns the number of body bytes (decoded, without chunk framing).</summary>
    /// <remarks>
    /// With <c>raw</c>, chunked framing goes to the sink as received; otherwise the sink gets decoded data.
    /// <paramref name="destination"/> is the transport the sink writes to, if any: past
    /// <see cref="HoldSegmentsAfterBytes"/> its partial segments are held back while more input is already there,
    /// and released before every wait for input and at the end.
    /// </remarks>
    /// <exception cref="IOException">The connection closed before the body was complete.</exception>
    /// <exception cref="HttpProtocolException">The chunked framing is malformed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (by a
    /// <see cref="DataRateMonitor"/> when the measured peer was too slow).</exception>
    public static ValueTask<long> RelayAsync(
        PipeReader source, BodyFraming framing, ChunkedDecoder decoder, IBodySink sink, bool raw, Transport? destination, CancellationToken cancellationToken) =>
        RelayAsync(source, framing, decoder, sink, new BodyRelayOptions(raw, destination), cancellationToken);

    /// <summary>Relays a body as <paramref name="options"/> say; returns the number of body bytes (decoded).</summary>
    /// <remarks>
    /// <para>
    /// Rates: only a wait on the measured side counts: a read that did not complete at once for the source (the sender
    /// is slow, <see cref="BodyRelayOptions.ReadRate"/>), a write that did not for the sink (the receiver is slow,
    /// <see cref="BodyRelayOptions.WriteRate"/>). Read bytes are counted as they arrive on the wire (chunk framing
    /// included); written bytes as handed to the sink.
    /// </para>
    /// <para>
    /// With a <see cref="BodyRelayOptions.Message"/>, its observers (<see cref="HttpMessage.Observe"/>) see the body's
    /// data as received (a chunked body decoded) and its end, and the trailers of a chunked body (or of an
    /// <see cref="BodyRelayOptions.Http2Origin"/>'s) are set on it.
    /// </para>
    /// </remarks>
    /// <exception cref="IOException">The connection closed before the body was complete.</exception>
    /// <exception cref="ClientConnectionFailedException">With <see cref="BodyRelayOptions.FromClient"/>: a read of the
    /// client's connection failed (a reset).</exception>
    /// <exception cref="HttpProtocolException">The chunked framing is malformed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (by a
    /// <see cref="DataRateMonitor"/> when the measured peer was too slow).</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<long> RelayAsync(
        PipeReader source, BodyFraming framing, ChunkedDecoder decoder, IBodySink sink, BodyRelayOptions options, CancellationToken cancellationToken)
    {
        var (raw, destination, readRate, writeRate, message, fromClient, http2Origin) = options;
        var observers = message?.Observers ?? [];
        try
        {
            long total = 0;
            HttpHeaders? trailers = null;
            switch (framing.Kind)
            {
                case BodyKind.None:
                    break;

                case BodyKind.ContentLength:
                    var remaining = framing.ContentLength;
                    while (remaining > 0)
                    {
                        ReadResult result;
                        try
                        {
                            result = await ReadAsync(source, destination, readRate, cancellationToken);
                        }
                        catch (Exception ex) when (fromClient && ClientConnectionFailedException.IsReadFailure(ex))
                        {
                            throw new ClientConnectionFailedException(ex);
                        }

                        readRate?.WaitEnded();
                        var buffer = result.Buffer;
                        if (buffer.IsEmpty && result.IsCompleted)
                        {
                            throw new BodyTruncatedException($"the connection closed with {remaining} bytes of the body still to come");
                        }

                        var take = buffer.Slice(0, Math.Min(remaining, buffer.Length));
                        readRate?.Transferred(take.Length);
                        HoldSegmentsPast(destination, total + take.Length);
                        await WriteAsync(sink, take, writeRate, cancellationToken);
                        writeRate?.WaitEnded();
                        writeRate?.Transferred(take.Length);
                        if (observers.Count > 0)
                        {
                            await ObserveAsync(observers, take, cancellationToken);
                        }

                        remaining -= take.Length;
                        total += take.Length;
                        source.AdvanceTo(take.End);
                    }

                    if (http2Origin is not null)
                    {
                        // RFC 9113 §8.1: a trailer section may follow the DATA whatever the content-length. The stream
                        // ends with or right after the last DATA; its pipe completes then (with an error if the stream
                        // failed, which the read throws), and no octet can follow the declared length (§8.1.1, checked
                        // by the stream).
                        await ReadToEndAsync(source, destination, readRate, cancellationToken);
                        trailers = http2Origin.ResponseTrailers;
                    }

                    break;

                case BodyKind.CloseDelimited:
                    // RFC 9112 §6.3 item 8: the body is everything until the server closes.
                    while (true)
                    {
                        ReadResult result;
                        try
                        {
                            result = await ReadAsync(source, destination, readRate, cancellationToken);
                        }
                        catch (Exception ex) when (fromClient && ClientConnectionFailedException.IsReadFailure(ex))
                        {
                            throw new ClientConnectionFailedException(ex);
                        }

                        readRate?.WaitEnded();
                        var buffer = result.Buffer;
                        if (!buffer.IsEmpty)
                        {
                            readRate?.Transferred(buffer.Length);
                            HoldSegmentsPast(destination, total + buffer.Length);
                            await WriteAsync(sink, buffer, writeRate, cancellationToken);
                            writeRate?.WaitEnded();
                            writeRate?.Transferred(buffer.Length);
                            if (observers.Count > 0)
                            {
                                await ObserveAsync(observers, buffer, cancellationToken);
                            }

                            total += buffer.Length;
                        }

                        source.AdvanceTo(buffer.End);
                        if (result.IsCompleted)
                        {
                            break;
                        }
                    }

                    break;

                case BodyKind.Chunked:
                    total = await RelayChunkedAsync(source, decoder, sink, options, observers, cancellationToken);
                    trailers = decoder.Trailers;
                    break;
            }

            // Raw, a chunked body's trailer section already went to the sink with its framing.
            await CompleteAsync(sink, raw && framing.Kind == BodyKind.Chunked ? null : trailers, writeRate, cancellationToken);
            writeRate?.WaitEnded();

            if (message is not null && trailers is { Count: > 0 })
            {
                message.Trailers = trailers;
            }

            await CompleteObserversAsync(observers, trailers, cancellationToken);
            return total;
        }
        finally
        {
            destination?.ReleaseSegments();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<long> RelayChunkedAsync(
        PipeReader source, ChunkedDecoder decoder, IBodySink sink, BodyRelayOptions options, IReadOnlyList<IBodyObserver> observers, CancellationToken cancellationToken)
    {
        var (raw, destination, readRate, writeRate, _, fromClient, _) = options;
        decoder.Reset();
        long total = 0;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await ReadAsync(source, destination, readRate, cancellationToken);
            }
            catch (Exception ex) when (fromClient && ClientConnectionFailedException.IsReadFailure(ex))
            {
                throw new ClientConnectionFailedException(ex);
            }

            readRate?.WaitEnded();
            var buffer = result.Buffer;
            var rest = buffer;
            var completed = false;
            while (true)
            {
                var status = decoder.Read(rest, out var consumed, out var data);
                if (status == ChunkedReadResult.Data)
                {
                    total += data.Length;
                    HoldSegmentsPast(destination, total);
                    if (!raw)
                    {
                        await WriteAsync(sink, data, writeRate, cancellationToken);
                        writeRate?.WaitEnded();
                        writeRate?.Transferred(data.Length);
                    }

                    if (observers.Count > 0)
                    {
                        await ObserveAsync(observers, data, cancellationToken);
                    }
                }

                rest = rest.Slice(consumed);
                if (status == ChunkedReadResult.Completed)
                {
                    completed = true;
                    break;
                }

                if (status == ChunkedReadResult.NeedMoreData)
                {
                    break;
                }
            }

            var passed = buffer.Slice(buffer.Start, rest.Start);
            readRate?.Transferred(passed.Length);
            if (raw && !passed.IsEmpty)
            {
                await WriteAsync(sink, passed, writeRate, cancellationToken);
                writeRate?.WaitEnded();
                writeRate?.Transferred(passed.Length);
            }

            if (completed)
            {
                source.AdvanceTo(rest.Start);
                return total;
            }

            if (result.IsCompleted)
            {
                throw new BodyTruncatedException("the connection closed in the middle of a chunked body");
            }

            source.AdvanceTo(rest.Start, buffer.End);
        }
    }

    /// <summary>Reads <paramref name="source"/> until it completes: the end of an HTTP/2 origin's stream after its
    /// declared length, which has no octets left to give.</summary>
    private static async ValueTask ReadToEndAsync(PipeReader source, Transport? destination, DataRateMonitor? rate, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await ReadAsync(source, destination, rate, cancellationToken);
            rate?.WaitEnded();
            source.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>Shows <paramref name="observers"/> a whole body that was relayed in one piece (with its head, by the
    /// caller) and then its end, as the relay shows a streamed one.</summary>
    public static async ValueTask ObserveWholeAsync(IReadOnlyList<IBodyObserver> observers, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        if (!body.IsEmpty)
        {
            await ObserveAsync(observers, new ReadOnlySequence<byte>(body), cancellationToken);
        }

        await CompleteObserversAsync(observers, null, cancellationToken);
    }

    private static async ValueTask ObserveAsync(IReadOnlyList<IBodyObserver> observers, ReadOnlySequence<byte> data, CancellationToken cancellationToken)
    {
        for (var i = 0; i < observers.Count; i++)
        {
            await observers[i].OnDataAsync(data, cancellationToken);
        }
    }

    private static async ValueTask CompleteObserversAsync(IReadOnlyList<IBodyObserver> observers, HttpHeaders? trailers, CancellationToken cancellationToken)
    {
        for (var i = 0; i < observers.Count; i++)
        {
            await observers[i].OnCompletedAsync(trailers, cancellationToken);
        }
    }

    /// <summary>
    /// Reads on; before waiting for input, sends whatever the destination holds back (nothing may wait on it) and
    /// starts timing the wait on the sender. The caller ends the timing when the read returns.
    /// </summary>
    private static ValueTask<ReadResult> ReadAsync(PipeReader source, Transport? destination, DataRateMonitor? rate, CancellationToken cancellationToken)
    {
        var read = source.ReadAsync(cancellationToken);
        if (!read.IsCompleted)
        {
            destination?.ReleaseSegments();
            rate?.WaitStarted();
        }

        return read;
    }

    /// <summary>Writes to the sink, timing the wait on the receiver if the write does not complete at once; the caller ends it.</summary>
    private static ValueTask WriteAsync(IBodySink sink, ReadOnlySequence<byte> data, DataRateMonitor? rate, CancellationToken cancellationToken)
    {
        var write = sink.WriteAsync(data, cancellationToken);
        if (!write.IsCompleted)
        {
            rate?.WaitStarted();
        }

        return write;
    }

    private static ValueTask CompleteAsync(IBodySink sink, HttpHeaders? trailers, DataRateMonitor? rate, CancellationToken cancellationToken)
    {
        var complete = sink.CompleteAsync(trailers, cancellationToken);
        if (!complete.IsCompleted)
        {
            rate?.WaitStarted();
        }

        return complete;
    }

    private static void HoldSegmentsPast(Transport? destination, long relayed)
    {
        if (relayed > HoldSegmentsAfterBytes)
        {
            destination?.HoldSegments();
        }
    }
}

/// <summary>How <see cref="BodyReader"/> relays a body, besides where from and where to.</summary>
/// <param name="Raw">Chunked framing goes to the sink as received; otherwise the sink gets decoded data.</param>
/// <param name="Destination">The transport the sink writes to, if any (for segment holding).</param>
/// <param name="ReadRate">Measures the sender (the minimum request body rate), if any.</param>
/// <param name="WriteRate">Measures the receiver (the minimum response rate), if any.</param>
/// <param name="Message">Whose observers see the body and who gets its trailers, if any.</param>
/// <param name="FromClient">
/// The source is the client's connection (a request body): a read that fails there is thrown as a
/// <see cref="ClientConnectionFailedException"/>, so that a write failing toward the origin, in the same relay, is not
/// taken for it, nor it for the origin's.
/// </param>
/// <param name="Http2Origin">
/// The source is this HTTP/2 origin stream's response body: after a Content-Length body the relay waits for the
/// stream's end, and the trailers it may have brought (RFC 9113 §8.1) end the body as a chunked body's would.
/// </param>
internal readonly record struct BodyRelayOptions(
    bool Raw = false, Transport? Destination = null, DataRateMonitor? ReadRate = null, DataRateMonitor? WriteRate = null, HttpMessage? Message = null,
    bool FromClient = false, Http2UpstreamStream? Http2Origin = null);
