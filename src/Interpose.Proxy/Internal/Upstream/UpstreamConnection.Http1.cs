using System.Buffers;
using System.Runtime.CompilerServices;
using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>HTTP/1.1 on an origin connection: one exchange at a time, its state kept here between exchanges.</summary>
internal sealed partial class UpstreamConnection
{
    // Resumable head scan: an origin sending one byte per packet costs linear, not quadratic, parsing.
    private Http1HeadScan _responseScan;
    private ChunkedDecoder? _responseDecoder;

    /// <summary>Decodes this connection's chunked response bodies (one at a time).</summary>
    public ChunkedDecoder ResponseDecoder => _responseDecoder ??= new ChunkedDecoder(runtime.Options.Limits, inResponse: true);

    /// <summary>Sends the request head (HEADERS on HTTP/2), and a body in memory with it (in one write when both fit the scratch buffer).</summary>
    /// <exception cref="IOException">The connection failed.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteRequestAsync(HttpRequest request, ScratchBuffer scratch, bool bodyFollows, CancellationToken cancellationToken)
    {
        if (_http2 is { } stream)
        {
            await stream.SendRequestAsync(request, bodyFollows, cancellationToken);
            return;
        }

        scratch.ResetWrittenCount();
        Http1Parser.WriteRequestHead(request.Method, request.Path, request.Version, request.Headers, scratch);
        var body = request.HasBody ? request.Body : ReadOnlyMemory<byte>.Empty;
        if (!body.IsEmpty && body.Length <= scratch.FreeCapacity)
        {
            scratch.Write(body.Span);
            await Transport.Stream.WriteAsync(scratch.WrittenMemory, cancellationToken);
            return;
        }

        await Transport.Stream.WriteAsync(scratch.WrittenMemory, cancellationToken);
        if (!body.IsEmpty)
        {
            await Transport.Stream.WriteAsync(body, cancellationToken);
        }
    }

    /// <summary>Reads the next response head (final or interim); the first byte's time goes to <paramref name="timings"/>.</summary>
    /// <exception cref="EmptyResponseException">The origin closed without sending a byte of response (safe to retry on a reused connection).</exception>
    /// <exception cref="IOException">The origin closed in the middle of the head, or the connection failed.</exception>
    /// <exception cref="HttpProtocolException">The head is malformed.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<HttpResponseHead> ReadResponseHeadAsync(ExchangeTimings timings, CancellationToken cancellationToken)
    {
        if (_http2 is { } stream)
        {
            return await stream.ReadResponseHeadAsync(timings, cancellationToken);
        }

        await WaitForResponseAsync(cancellationToken);
        var input = Transport.Input;
        var limits = runtime.Options.Limits;
        _responseScan.Reset();
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (timings.FirstByte == 0 && !buffer.IsEmpty)
            {
                timings.FirstByte = runtime.Time.GetTimestamp();
            }

            if (Http1Parser.TryParseResponseHead(buffer, limits, ref _responseScan, out var head, out var consumed))
            {
                input.AdvanceTo(consumed);
                _responseScan.Reset();

                // The first response head is in hand: the connection is set up, its body's reads stay inline.
                Transport.EndSetUp();
                return head;
            }

            if (result.IsCompleted)
            {
                input.AdvanceTo(buffer.End);
                throw timings.FirstByte != 0
                    ? new IOException("the origin closed the connection in the middle of the response head")
                    : new EmptyResponseException();
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }
}

/// <summary>The origin closed a (reused) connection without sending a byte of response.</summary>
internal sealed class EmptyResponseException() : IOException("the origin closed the connection without responding");
