using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Interpose.Certificates;
using Interpose.Core.Flows;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy;

/// <summary>
/// Client replay (mitmproxy's <c>client_replay</c>, <c>interpose replay FILE</c>): sends recorded requests again to
/// their origins, through an in-process <see cref="ProxyServer"/>, so that a replayed request goes out exactly as the
/// proxy forwarded the original (header order and case, body bytes, the origin TLS validation of
/// <see cref="ProxyOptions"/>, the flow log line, the addons such as a <see cref="FlowRecorder"/>).
/// </summary>
/// <remarks>
/// <code>
///  ReplayAsync(flow) ─► loopback socket ─► in-process proxy ─► [route addon: tag, recorded Host] ─► other addons ─► origin
///                       METHOD absolute-URL HTTP/1.1, recorded fields, body, Connection: close
///                       ◄─ response drained ◄──────────── Done hook: status or error ─► FlowReplayResult
/// </code>
/// <para>Each replay is one HTTP/1.1 request on its own connection to the in-process proxy, which serves only loopback.
/// The proxy offers origins HTTP/1.1 for an HTTP/1.1 client, so an exchange recorded over HTTP/2 is replayed as
/// HTTP/1.1 (its fields as recorded, with <c>Host</c> from its authority). A request body that was recorded cut (over
/// the recording cap, or ended early because the exchange failed mid-body) is not replayed: the result says so.</para>
/// <para>Replayed exchanges carry the tag <see cref="Tag"/> (the original flow's id), which a recorder turns into
/// mitmproxy's <c>is_replay = "request"</c> (<c>~replayq</c>).</para>
/// <para>Replays may run concurrently; <c>interpose replay</c> runs them one after another, in recorded order.</para>
/// </remarks>
public sealed class FlowReplayer : IAsyncDisposable
{
    /// <summary>The tag on a replayed exchange; its value is the id of the recorded flow.</summary>
    public const string Tag = "client-replay";

    private readonly ProxyServer _server;
    private readonly RouteAddon _route;
    private readonly CertificateAuthority? _ownedAuthority;

    private FlowReplayer(ProxyServer server, RouteAddon route, CertificateAuthority? ownedAuthority)
    {
        _server = server;
        _route = route;
        _ownedAuthority = ownedAuthority;
    }

    /// <summary>
    /// Starts the in-process proxy the replays go through. <paramref name="options"/> are taken over: their listen
    /// endpoints are replaced by one loopback port and the replayer's addon is put first; everything else (origin TLS
    /// validation, timeouts, resolver, addons such as a <see cref="FlowRecorder"/>) applies to the replays.
    /// </summary>
    /// <param name="options">The proxy's options; a throwaway certificate authority is made when they have none (the
    /// replayer never intercepts a client's TLS).</param>
    /// <param name="loggerFactory">Where the proxy logs, the flow log line of each replay included; nowhere when null.</param>
    /// <param name="cancellationToken">Abandons the start.</param>
    /// <returns>The started replayer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The options are invalid (as <see cref="ProxyServer.StartAsync"/>).</exception>
    /// <exception cref="SocketException">No loopback port could be bound.</exception>
    public static async Task<FlowReplayer> StartAsync(ProxyOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ListenEndpoints.Clear();
        options.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        var route = new RouteAddon();
        options.Addons.Insert(0, route);
        CertificateAuthority? owned = null;
        if (options.CertificateAuthority is null)
        {
            owned = CertificateAuthority.CreateEphemeral(CertificateKeyAlgorithm.EcdsaP256, options.TimeProvider);
            options.CertificateAuthority = owned;
        }

        var server = new ProxyServer(options, loggerFactory);
        try
        {
            await server.StartAsync(cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            owned?.Dispose();
            throw;
        }

        return new FlowReplayer(server, route, owned);
    }

    /// <summary>Sends <paramref name="flow"/>'s request again and waits for the new exchange to end.</summary>
    /// <param name="flow">The recorded flow; its request body must have been recorded whole (with bodies loaded).</param>
    /// <param name="cancellationToken">Abandons the replay (its connection is closed).</param>
    /// <returns>The status of the new response, or why there is none.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The replayer is disposed.</exception>
    public async Task<FlowReplayResult> ReplayAsync(HttpFlow flow, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flow);
        byte[] bytes;
        try
        {
            bytes = ReplayRequest.Serialize(flow.Request);
        }
        catch (ArgumentException ex)
        {
            return new FlowReplayResult(flow, null, ex.Message + "; not replayed");
        }

        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(_server.Endpoints[0], cancellationToken);
        var port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        var pending = new Pending(flow);
        _route.Pending[port] = pending;
        try
        {
            try
            {
                await socket.SendAsync(bytes, cancellationToken);
            }
            catch (SocketException)
            {
                // The proxy answered and closed before it took the whole body (the origin refused the connection, say:
                // a body past what it drains is not read): the exchange's outcome is still the Done hook's.
            }

            // The response is read and dropped (the result comes from the Done hook); the proxy closes after it.
            var drained = DrainAsync(socket, cancellationToken);
            await Task.WhenAny(pending.Done.Task, drained).WaitAsync(cancellationToken);
            await drained;
            return pending.Done.Task.IsCompleted
                ? await pending.Done.Task
                : new FlowReplayResult(flow, null, "the proxy refused the request before forwarding it");
        }
        finally
        {
            _route.Pending.TryRemove(port, out _);
        }
    }

    /// <summary>Stops the in-process proxy (letting a replay in flight finish) and releases it.</summary>
    /// <returns>A task that completes when stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _ownedAuthority?.Dispose();
    }

    private static async Task DrainAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // A reset after the response: the exchange's outcome is the Done hook's.
        }
    }

    private sealed class Pending(HttpFlow flow)
    {
        public HttpFlow Flow { get; } = flow;

        public TaskCompletionSource<FlowReplayResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Finds the replayed flow by the client connection's port, tags the exchange and reports its end.</summary>
    private sealed class RouteAddon : ProxyAddon
    {
        public ConcurrentDictionary<int, Pending> Pending { get; } = new();

        public override string Name => "client-replay";

        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (Find(exchange) is { } pending)
            {
                exchange.Tags[Tag] = pending.Flow.Id.ToString();

                // RFC 9110 §7.2 makes the proxy replace a Host field that differs from an absolute-form target's
                // authority; the original request went out with the recorded one.
                if (pending.Flow.Request.Headers.Get("Host") is { } host && exchange.Request.Headers.Get("Host") != host)
                {
                    exchange.Request.Headers.Set("Host", host);
                }
            }

            return default;
        }

        public override ValueTask DoneAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (Find(exchange) is { } pending)
            {
                var error = exchange.Error is { } e ? $"{e.Phase}: {e.Message}"
                    : exchange.IsKilled ? "killed by an addon"
                    : exchange.Response is null ? "no response" : null;
                pending.Done.TrySetResult(new FlowReplayResult(pending.Flow, error is null ? exchange.Response!.StatusCode : null, error));
            }

            return default;
        }

        private Pending? Find(HttpExchange exchange) =>
            exchange.Client.RemoteEndPoint is IPEndPoint remote && Pending.TryGetValue(remote.Port, out var pending) ? pending : null;
    }
}
