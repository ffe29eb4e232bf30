using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>
/// An open connection to an origin. Owned by one exchange at a time, or idle in the <see cref="UpstreamPool"/>;
/// disposing it closes it and tells the addons, once.
/// </summary>
/// <remarks>
/// <para>
/// HTTP/1.1 gives a response no identity of its own: it answers the request sent before it on the same connection
/// (RFC 9112 §9.3). Bytes that arrive when no request is outstanding therefore answer nothing, and a connection that
/// carried them would hand them to the next request as its response — possibly another client's (response queue
/// poisoning). So while a connection is idle, a read is kept pending on it (as Go's net/http and SocketsHttpHandler
/// do): whatever completes that read before a request is sent — bytes, the origin's close or a reset — closes the
/// connection and it is never rented again. Bytes already buffered when the connection comes back from an exchange
/// complete the read at once, so they are caught when the response ends as well as later while idle.
/// </para>
/// <para>
/// Ownership moves between <c>Owned</c> and <c>Idle</c> under <see cref="Interlocked"/>: the pool renting it and the
/// idle read finding the origin talking race for it, and exactly one wins.
/// </para>
/// </remarks>
internal sealed partial class UpstreamConnection(UpstreamKey key, Transport transport, ServerConnection info, ProxyRuntime runtime) : IAsyncDisposable
{
    private const int Owned = 0;
    private const int Idle = 1;
    private const int Closed = 2;

    private int _state = Owned;
    private int _disposed;

    // The read kept pending while idle; after a rent, the exchange awaits it before its own first read (a PipeReader
    // takes one read at a time). Completes with the read's failure, if any. A pooled ValueTask (no allocation per
    // exchange): it is awaited once, by the exchange that rents the connection or by DisposeAsync, never by both.
    private ValueTask<Exception?>? _idleRead;

    private readonly Http2UpstreamStream? _http2;

    /// <summary>One stream of an HTTP/2 origin connection, lent to one exchange (the pool owns the connection).</summary>
    public UpstreamConnection(Http2UpstreamStream stream, ProxyRuntime runtime)
        : this(stream.Connection.Key, new Transport(Stream.Null, stream.ResponseBody), stream.Connection.Info, runtime)
    {
        _http2 = stream;
        IsReused = stream.Connection.StreamsOpened > 1;
    }

    /// <summary>The HTTP/2 stream this exchange runs on, when the origin speaks HTTP/2; null for HTTP/1.1.</summary>
    public Http2UpstreamStream? Http2 => _http2;

    public UpstreamKey Key { get; } = key;

    public Transport Transport { get; } = transport;

    public ServerConnection Info { get; } = info;

    /// <summary>True when taken from the pool (it may have been closed by the origin meanwhile).</summary>
    public bool IsReused { get; private set; }

    /// <summary>True once closed, by its owner or by its idle read.</summary>
    public bool IsClosed => Volatile.Read(ref _state) == Closed;

    /// <summary>When it was put back in the pool, as a <see cref="TimeProvider"/> timestamp.</summary>
    public long IdleSince { get; private set; }

    /// <summary>
    /// Marks the connection idle and starts watching it for bytes the origin sends unasked. False when the origin
    /// already sent some (they arrived with the end of the last response) or closed: the connection is then closed.
    /// </summary>
    public bool TryBecomeIdle(long now)
    {
        IdleSince = now;
        Volatile.Write(ref _state, Idle);
#pragma warning disable CA2012 // Stored to be awaited exactly once, by the renter or by DisposeAsync (see _idleRead).
        _idleRead = WatchIdleAsync();
#pragma warning restore CA2012
        return Volatile.Read(ref _state) == Idle;
    }

    /// <summary>Takes an idle connection for an exchange; false when the idle read closed it first.</summary>
    public bool TryTakeFromIdle()
    {
        if (Interlocked.CompareExchange(ref _state, Owned, Idle) != Idle)
        {
            return false;
        }

        IsReused = true;
        return true;
    }

    /// <summary>
    /// Before the first read of a response on a connection taken from the pool: waits until the read started while
    /// it was idle sees the response's first bytes (it leaves them in the pipe for the caller).
    /// </summary>
    /// <exception cref="IOException">The origin closed or reset the connection; a retry on a fresh one is safe when
    /// nothing of the request was lost.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WaitForResponseAsync(CancellationToken cancellationToken)
    {
        if (_idleRead is not { } read)
        {
            return;
        }

        _idleRead = null;
        Exception? error;
        if (read.IsCompleted)
        {
            error = await read;
        }
        else
        {
            // The read was started without a token; a cancellation ends it through the pipe (it then returns marked
            // cancelled, and the connection is disposed by the failing exchange).
            await using (cancellationToken.UnsafeRegister(static s => ((PipeReader)s!).CancelPendingRead(), Transport.Input))
            {
                error = await read;
            }

            cancellationToken.ThrowIfCancellationRequested();
        }

        if (error is not null)
        {
            throw new IOException($"the connection to {Key.Host}:{Key.Port} failed while it was idle: {error.Message}", error);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_http2 is { } stream)
        {
            // The stream ends (RST_STREAM CANCEL if unfinished); the connection stays with the pool.
            Volatile.Write(ref _state, Closed);
            await stream.CloseAsync();
            return;
        }

        Volatile.Write(ref _state, Closed);
        if (_idleRead is { } read)
        {
            // The pipe must not be completed under a pending read: end the read first (a no-op when it ended).
            _idleRead = null;
            if (!read.IsCompleted)
            {
                Transport.Input.CancelPendingRead();
            }

            await read;
        }

        await CloseAsync();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Exception?> WatchIdleAsync()
    {
        var input = Transport.Input;
        ReadResult result;
        try
        {
            // The exchange before is over and the read below has not started: nothing uses the TLS stream now.
            Transport.ReleaseIdleTlsBuffers(runtime.Options.TimeProvider);
            var pending = input.ReadAsync(CancellationToken.None);
            if (!pending.IsCompleted && runtime.Logger.IsEnabled(LogLevel.Trace))
            {
                // The read waits with a zero-byte read: what the connection holds while it sits in the pool.
                var tlsReleased = Transport.Stream is SslStream ssl && TlsBufferRelease.IsEnabled(ssl);
                ProxyLog.UpstreamIdle(runtime.Logger, Key.Host, Key.Port, Transport.Buffers.Rented, tlsReleased, Transport.TlsBioBytes);
            }

            result = await pending;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // A reset, or TLS failing on the origin's side: no different from a close while idle.
            if (Interlocked.CompareExchange(ref _state, Closed, Idle) == Idle)
            {
                ProxyLog.IdleUpstreamClosed(runtime.Logger, Key.Host, Key.Port, ex.Message);
                await CloseAsync();
            }

            return ex;
        }

        var unsolicited = result.Buffer.Length;
        // Leave every byte for the exchange that may read next: nothing consumed, nothing examined.
        input.AdvanceTo(result.Buffer.Start);
        if (result.IsCanceled || Interlocked.CompareExchange(ref _state, Closed, Idle) != Idle)
        {
            // Cancelled by DisposeAsync, or rented first: the bytes are the response to the request just sent.
            return null;
        }

        if (unsolicited > 0)
        {
            // RFC 9112 §9.3: a response answers the oldest outstanding request, and there is none.
            ProxyLog.UnsolicitedResponse(runtime.Logger, Key.Host, Key.Port, unsolicited);
            runtime.Metrics.UnsolicitedResponse();
        }
        else
        {
            ProxyLog.IdleUpstreamClosed(runtime.Logger, Key.Host, Key.Port, "the origin closed it");
        }

        await CloseAsync();
        return null;
    }

    private async ValueTask CloseAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Transport.DisposeAsync();
        await runtime.Addons.NotifyAsync("ServerDisconnectedAsync", Info, static (a, s, ct) => a.ServerDisconnectedAsync(s, ct), runtime.Logger, CancellationToken.None);
    }
}
