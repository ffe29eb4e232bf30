namespace Interpose.Proxy.Internal;

/// <summary>
/// An origin connection opened ahead of the request that will use it (<see cref="ConnectionStrategy.Eager"/>): started
/// when an intercepted ClientHello names the origin, so that its set-up overlaps the client's TLS handshake. Owned by
/// the client session: either the first request to <see cref="Key"/> takes it, or disposing it closes it (or cancels
/// it while it is still being opened).
/// </summary>
/// <remarks>
/// An unused connection is closed, not pooled: it was opened for a tunnel whose client left (or went elsewhere), and
/// the origin sees a connection it may never have been meant to see; keeping it idle would only prolong that.
/// NOTE: pooling it would now be safe (the pool's idle read lets a TLS 1.3 origin's post-handshake session tickets,
/// RFC 8446 §4.6.1, pass through TLS without counting as bytes), should a measurement show a gain.
/// </remarks>
internal sealed class EagerConnection : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly Task<ConnectResult> _connecting;
    private bool _taken;

    private EagerConnection(UpstreamKey key, CancellationTokenSource cts, Task<ConnectResult> connecting)
    {
        Key = key;
        _cts = cts;
        _connecting = connecting;
    }

    public UpstreamKey Key { get; }

    /// <summary>
    /// Starts opening a connection for <paramref name="key"/>, on <paramref name="socket"/> (opened at the CONNECT) when
    /// given; cancelled with <paramref name="aborted"/>.
    /// </summary>
    public static EagerConnection Start(ProxyRuntime rt, UpstreamKey key, CancellationToken aborted, Task<SocketResult>? socket = null)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        return new EagerConnection(key, cts, rt.Connector.ConnectAsync(key, exchange: null, cts.Token, socket).AsTask());
    }

    /// <summary>Waits for the connection and hands it to the caller, who owns it from then on.</summary>
    /// <returns>The outcome of the connect, as <see cref="UpstreamConnector.ConnectAsync"/> reports it.</returns>
    /// <exception cref="OperationCanceledException">The proxy is shutting down.</exception>
    public async ValueTask<ConnectResult> TakeAsync()
    {
        _taken = true;
        return await _connecting;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_taken)
        {
            _taken = true;
            if (!_connecting.IsCompleted)
            {
                // The session ended before any request: an unfinished connect is of no use to anyone.
                await _cts.CancelAsync();
            }

            try
            {
                var result = await _connecting;
                if (result.Connection is { } connection)
                {
                    await connection.DisposeAsync();
                }
            }
            catch (OperationCanceledException)
            {
                // Cancelled above or by the shutdown: the connector closed what it had opened.
            }
        }

        _cts.Dispose();
    }
}
