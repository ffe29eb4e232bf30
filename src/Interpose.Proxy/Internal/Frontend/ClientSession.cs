using System.Net.Sockets;
using System.Security.Authentication;

namespace Interpose.Proxy.Internal;

/// <summary>
/// One client connection, from accept to close: one async flow that owns the client transport and every origin
/// connection it opens, and hands the connection to its layers.
/// </summary>
/// <remarks>
/// <code>
///  accept ─► Frontend (HttpProxyFrontend: admission; CONNECT or absolute-form)
///              ├─ absolute-form ─► Server (Http1ServerConnection) ─► Exchange (ExchangePipeline) ─► Upstream
///              └─ CONNECT ─► Tunnel (TunnelLayer: sniff, TLS decision) ─┬─ intercept / plain HTTP ─► Server ─► Exchange ─► Upstream
///                                                                       └─ passthrough / other ─► byte relay
/// </code>
/// docs/architecture.md draws the whole path.
/// </remarks>
/// <param name="runtime">The proxy's shared state.</param>
/// <param name="socket">The accepted connection.</param>
/// <param name="admission">The limiter's handle on this connection (null for the start-up warm-up's, which no limiter counts).</param>
internal sealed class ClientSession(ProxyRuntime runtime, Socket socket, AdmittedConnection? admission = null)
{
    public async Task RunAsync()
    {
        runtime.HeapTrim.Note();
        var info = new ClientConnection(runtime.NextClientId(), socket.RemoteEndPoint, socket.LocalEndPoint);
        // Until its first request head is in hand, the connection's reads continue on the thread pool (HandOffStream).
        await using var client = new Transport(socket, new HandOffStream(new NetworkStream(socket, ownsSocket: false)));
        await using var flow = new ClientFlow(runtime, client, info, admission);

        // Past the shutdown deadline, closing the socket unblocks whatever this flow still waits on.
        await using var abort = runtime.Aborted.Register(static s => ((Socket)s!).Dispose(), socket);
        await runtime.Addons.NotifyAsync("ClientConnectedAsync", info, static (a, c, ct) => a.ClientConnectedAsync(c, ct), runtime.Logger, runtime.Aborted);
        try
        {
            await new HttpProxyFrontend(flow).RunAsync();
        }
        catch (Exception ex) when (IsConnectionFailure(ex))
        {
            ProxyLog.ClientConnectionEnded(runtime.Logger, info, flow.Phase, ex.Message);
        }
        catch (Exception ex)
        {
            ProxyLog.SessionCrashed(runtime.Logger, info, ex);
        }
        finally
        {
            // An origin connection opened ahead that no request took is closed before the client's disconnection is
            // reported: nothing of the connection is left once its last event ran.
            await flow.DisposeAsync();
            await runtime.Addons.NotifyAsync("ClientDisconnectedAsync", info, static (a, c, ct) => a.ClientDisconnectedAsync(c, ct), runtime.Logger, CancellationToken.None);
            runtime.HeapTrim.Note();
        }
    }

    /// <summary>The failures that end a client connection in the ordinary way (logged at Debug, not as crashes).</summary>
    internal static bool IsConnectionFailure(Exception ex) =>
        ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or AuthenticationException;
}

/// <summary>A wait of the exchange timed out in <see cref="Phase"/>.</summary>
internal sealed class ExchangeTimeoutException(ExchangePhase phase, Exception inner) : Exception("timeout in " + phase, inner)
{
    public ExchangePhase Phase { get; } = phase;
}
