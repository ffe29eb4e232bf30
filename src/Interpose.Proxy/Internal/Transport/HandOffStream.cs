using System.Runtime.CompilerServices;

namespace Interpose.Proxy.Internal;

/// <summary>
/// A connection's network stream while the connection is set up: a read that completes later continues on the thread
/// pool instead of on the socket event thread that saw it complete. <see cref="EndSetUp"/> (the first request head, or
/// the first response head of an origin, is in hand) turns that off: later reads continue where the socket completes
/// them.
/// </summary>
/// <remarks>
/// The command runs socket continuations inline on the event threads (one per core: RuntimeTuning), which saves a
/// thread-pool hop per socket operation on a busy keep-alive connection. A connection's set-up is different: parsing
/// the CONNECT, forging or finding the leaf, the TLS handshake's key exchange and signature, the first request's
/// origin lookup. Run inline, that work holds up every other socket of the same event thread, so each new connection
/// waits behind the set-ups queued before it while a core may be idle. https-newconn-c16 (bench/load, native build, 4
/// rounds each way): 1,157 req/s with every read inline, 1,412 with the client's reads handed off for the whole
/// connection (docs/performance.md, item 30). Handing off every read of a keep-alive connection instead costs
/// https-1k-c64 about a tenth of its throughput, and a body's reads gain nothing from it: hence the end of the set-up.
/// </remarks>
internal sealed class HandOffStream(Stream inner) : NetworkReadStream(inner)
{
    // Written once (true) through Transport.EndSetUp, read by each read; a read that misses it hands off once more.
    private volatile bool _setUpEnded;

    /// <summary>Whether reads still hand off (tests).</summary>
    internal bool HandsOff => !_setUpEnded;

    /// <summary>The connection is set up: later reads continue where the socket completes them.</summary>
    public void EndSetUp() => _setUpEnded = true;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = Inner.ReadAsync(buffer, cancellationToken);

        // Data already there (the read completed at once) is taken on this thread: nothing waited, nothing to hand off.
        return _setUpEnded || read.IsCompleted ? read : HandOffAsync(read);
    }

    /// <summary>Disposes the network stream too: the transport disposes this stream in its place.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<int> HandOffAsync(ValueTask<int> read)
    {
        var count = await read;

        // Queued to the thread pool: the event thread goes back to its other sockets at once.
        await Task.Yield();
        return count;
    }
}
