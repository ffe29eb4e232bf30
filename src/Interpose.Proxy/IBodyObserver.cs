using System.Buffers;
using Interpose.Core.Http;

namespace Interpose.Proxy;

/// <summary>
/// Watches a streamed body without changing it: the bytes still leave exactly as they arrived (framing included, no
/// re-chunking, nothing buffered). For recording, hashing, counting or live views.
/// </summary>
/// <remarks>
/// Add one with <see cref="HttpMessage.Observe"/> in a hook that runs before the body flows. It sees the body's data
/// (a chunked body decoded, without its framing) and then its end. The relay waits for each call: an observer that
/// blocks slows the transfer, so hand work to a bounded queue rather than doing I/O inline. With HTTP/2, the
/// exchanges of one connection run concurrently.
/// </remarks>
public interface IBodyObserver
{
    /// <summary>The next bytes of the body.</summary>
    /// <param name="data">The bytes; valid only until the returned task completes.</param>
    /// <param name="cancellationToken">Cancelled when the exchange ends early.</param>
    ValueTask OnDataAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken);

    /// <summary>The body ended cleanly (it is not called when the exchange fails mid-body).</summary>
    /// <param name="trailers">The trailer fields that came with a chunked body, if any.</param>
    /// <param name="cancellationToken">Cancelled when the exchange ends early.</param>
    ValueTask OnCompletedAsync(HttpHeaders? trailers, CancellationToken cancellationToken);
}
