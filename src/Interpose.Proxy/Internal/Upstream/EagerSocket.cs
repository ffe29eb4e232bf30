namespace Interpose.Proxy.Internal;

/// <summary>
/// The TCP connection to a CONNECT target, opened when the CONNECT arrives (<see cref="ConnectionStrategy.Eager"/>):
/// the origin's name resolution and TCP handshake run while the client reads the 200 and prepares its ClientHello,
/// instead of after it. Whatever then reaches the origin takes it: the intercepted tunnel's <see cref="EagerConnection"/>
/// (which adds the TLS), a passthrough or a raw relay. Owned by the tunnel: disposing it closes a socket nobody took (or
/// cancels its opening).
/// </summary>
/// <remarks>
/// mitmproxy's eager strategy opens the server connection at the CONNECT in the same way. NOTE: the origin's TLS cannot
/// start here as well: its SNI and ALPN offer follow the ClientHello (a client may name another server, and whether it
/// offers h2 decides what the proxy offers the origin), and a guess that is wrong costs a wasted handshake on both sides.
/// </remarks>
internal sealed class EagerSocket : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly Task<SocketResult> _opening;
    private int _taken;

    private EagerSocket(string host, int port, CancellationTokenSource cts, Task<SocketResult> opening)
    {
        Host = host;
        Port = port;
        _cts = cts;
        _opening = opening;
    }

    /// <summary>The CONNECT target's host.</summary>
    public string Host { get; }

    /// <summary>The CONNECT target's port.</summary>
    public int Port { get; }

    /// <summary>Starts resolving and connecting to <paramref name="host"/>:<paramref name="port"/>; cancelled with <paramref name="aborted"/>.</summary>
    public static EagerSocket Start(ProxyRuntime rt, string host, int port, CancellationToken aborted)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        return new EagerSocket(host, port, cts, rt.Connector.OpenSocketAsync(host, port, exchange: null, cts.Token));
    }

    /// <summary>
    /// Hands the opening (its socket, or why it failed) to the caller, who owns the socket from then on; null when it goes
    /// elsewhere than <paramref name="host"/>:<paramref name="port"/> or was taken already.
    /// </summary>
    public Task<SocketResult>? Take(string host, int port) =>
        port == Port && string.Equals(host, Host, StringComparison.Ordinal) && Interlocked.Exchange(ref _taken, 1) == 0 ? _opening : null;

    /// <summary>Closes the socket if nobody took it, cancelling its opening if that is still under way.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _taken, 1) == 0)
        {
            if (!_opening.IsCompleted)
            {
                await _cts.CancelAsync();
            }

            // OpenSocketAsync returns failures (the cancellation too) as values: nothing to catch.
            (await _opening).Socket?.Dispose();
            _cts.Dispose();
            return;
        }

        // Taken: the taker may still be waiting for the connect, which watches this source's token; it is released
        // once the opening ends, whoever waits for it.
        _ = _opening.ContinueWith(static (_, cts) => ((CancellationTokenSource)cts!).Dispose(), _cts, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }
}
