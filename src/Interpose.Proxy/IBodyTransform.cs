using Interpose.Core.Http;

namespace Interpose.Proxy;

/// <summary>
/// Changes a streamed body as it passes: each chunk as it arrives, then the end of the body with its trailers. The
/// body is re-framed for its new length (chunked, or close-delimited for an HTTP/1.0 client).
/// </summary>
/// <remarks>
/// Set it as <see cref="HttpMessage.Transform"/> in a hook that runs before the body flows. The synchronous
/// <see cref="BodyTransform"/> delegate (<see cref="HttpMessage.StreamTransform"/>) runs through this interface. With
/// HTTP/2, the exchanges of one connection run concurrently: a transform instance must not be shared between
/// exchanges unless it is thread-safe.
/// </remarks>
public interface IBodyTransform
{
    /// <summary>Transforms the next chunk.</summary>
    /// <param name="chunk">The bytes received; valid only until the returned task completes.</param>
    /// <param name="cancellationToken">Cancelled when the exchange ends early.</param>
    /// <returns>The bytes to send in their place (may be empty, may be <paramref name="chunk"/> itself).</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    ValueTask<ReadOnlyMemory<byte>> TransformAsync(ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken);

    /// <summary>The body ended: returns the last bytes to send (what the transform held back, if anything).</summary>
    /// <param name="trailers">The trailer fields that came with the body, if any; the transform may change them.</param>
    /// <param name="cancellationToken">Cancelled when the exchange ends early.</param>
    /// <returns>The final bytes.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    ValueTask<ReadOnlyMemory<byte>> CompleteAsync(HttpHeaders? trailers, CancellationToken cancellationToken);
}
