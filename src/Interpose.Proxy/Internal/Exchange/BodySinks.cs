using System.Buffers;
using System.Runtime.CompilerServices;
using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>Where a body's bytes go as <see cref="BodyReader"/> reads them.</summary>
internal interface IBodySink
{
    /// <summary>Takes the next bytes; <paramref name="data"/> is valid only during the call.</summary>
    ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken);

    /// <summary>The body ended; <paramref name="trailers"/> came with a chunked body in decoded mode.</summary>
    ValueTask CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken);
}

/// <summary>Writes bytes as they are: the zero-copy path, also used to pass chunked framing through untouched.</summary>
internal sealed class StreamSink(Stream destination) : IBodySink
{
    public ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken) =>
        StreamWriting.WriteAsync(destination, data, cancellationToken);

    public ValueTask CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken) => default;
}

/// <summary>
/// Re-frames decoded body bytes for the receiver: as chunks (HTTP/1.1) or plain (Content-Length known, or
/// close-delimited for HTTP/1.0), through an optional per-chunk transform.
/// </summary>
internal sealed class ReframingSink(Stream destination, bool chunked, IBodyTransform? transform, ScratchBuffer scratch) : IBodySink
{
    public async ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
    {
        if (data.IsEmpty)
        {
            return;
        }

        if (transform is null && !chunked)
        {
            await StreamWriting.WriteAsync(destination, data, cancellationToken);
            return;
        }

        // The transform needs one contiguous chunk.
        ReadOnlyMemory<byte> chunk;
        byte[]? rented = null;
        if (data.IsSingleSegment)
        {
            chunk = data.First;
        }
        else
        {
            rented = ArrayPool<byte>.Shared.Rent((int)data.Length);
            data.CopyTo(rented);
            chunk = rented.AsMemory(0, (int)data.Length);
        }

        try
        {
            await EmitAsync(transform is null ? chunk : await transform.TransformAsync(chunk, cancellationToken), cancellationToken);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    public async ValueTask CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken)
    {
        if (transform is not null)
        {
            await EmitAsync(await transform.CompleteAsync(trailers, cancellationToken), cancellationToken);
        }

        if (chunked)
        {
            scratch.ResetWrittenCount();
            ChunkedEncoder.WriteLastChunk(trailers, scratch);
            await destination.WriteAsync(scratch.WrittenMemory, cancellationToken);
        }
    }

    private async ValueTask EmitAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        if (bytes.IsEmpty)
        {
            // RFC 9112 §7.1: a zero-size chunk would end the body; an empty transform result sends nothing.
            return;
        }

        if (!chunked)
        {
            await destination.WriteAsync(bytes, cancellationToken);
            return;
        }

        // One write per chunk (header, data, CRLF): one TLS record and one syscall instead of three.
        scratch.ResetWrittenCount();
        ChunkedEncoder.WriteChunkHeader(bytes.Length, scratch);
        scratch.Write(bytes.Span);
        ChunkedEncoder.WriteChunkTerminator(scratch);
        await destination.WriteAsync(scratch.WrittenMemory, cancellationToken);
    }
}

/// <summary>Collects a whole body for a hook, up to a limit.</summary>
internal sealed class BufferingSink(long limit) : IBodySink
{
    private readonly ArrayBufferWriter<byte> _buffer = new();

    public ReadOnlyMemory<byte> Body => _buffer.WrittenMemory;

    public HttpHeaders? Trailers { get; private set; }

    public ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
    {
        if (_buffer.WrittenCount + data.Length > limit)
        {
            throw new BodyTooLargeException(limit);
        }

        foreach (var segment in data)
        {
            _buffer.Write(segment.Span);
        }

        return default;
    }

    public ValueTask CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken)
    {
        Trailers = trailers is { Count: > 0 } ? trailers : null;
        return default;
    }
}

/// <summary>A body a hook asked to buffer is larger than <see cref="ProxyOptions.MaxBufferedBodyBytes"/>.</summary>
internal sealed class BodyTooLargeException(long limit)
    : Exception($"the body is larger than the buffering limit of {limit} bytes (ProxyOptions.MaxBufferedBodyBytes)")
{
    public long Limit { get; } = limit;
}

/// <summary>Writing possibly multi-segment sequences to a stream.</summary>
internal static class StreamWriting
{
    public static ValueTask WriteAsync(Stream destination, ReadOnlySequence<byte> data, CancellationToken cancellationToken) =>
        data.IsSingleSegment ? destination.WriteAsync(data.First, cancellationToken) : WriteSegmentsAsync(destination, data, cancellationToken);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask WriteSegmentsAsync(Stream destination, ReadOnlySequence<byte> data, CancellationToken cancellationToken)
    {
        foreach (var segment in data)
        {
            await destination.WriteAsync(segment, cancellationToken);
        }
    }
}
