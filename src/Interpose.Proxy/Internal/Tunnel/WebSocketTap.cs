using System.Buffers;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Core.WebSockets;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>Sees the bytes of a relay before each write, without changing them.</summary>
internal interface IRelayTap
{
    /// <summary>Bytes were relayed.</summary>
    /// <param name="fromClient">Their direction.</param>
    /// <param name="data">The bytes; valid only during the call.</param>
    void OnRelayed(bool fromClient, in ReadOnlySequence<byte> data);
}

/// <summary>
/// Reads the messages of an accepted WebSocket upgrade out of both directions of its relay and hands them to the
/// exchange's <see cref="IWebSocketObserver"/>s. Made only when an observer asked for them, so a WebSocket nobody
/// watches costs nothing more than a byte relay.
/// </summary>
internal sealed class WebSocketTap : IRelayTap, IDisposable
{
    private readonly IReadOnlyList<IWebSocketObserver> _observers;
    private readonly WebSocketMessageReader _fromClient;
    private readonly WebSocketMessageReader _fromServer;
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly ILogger _logger;
    private readonly string _host;

    private WebSocketTap(IReadOnlyList<IWebSocketObserver> observers, bool perMessageDeflate, TimeProvider time, ILogger logger, string host)
    {
        _observers = observers;
        _fromClient = new WebSocketMessageReader(IWebSocketObserver.MaxContentBytes, perMessageDeflate);
        _fromServer = new WebSocketMessageReader(IWebSocketObserver.MaxContentBytes, perMessageDeflate);
        _time = time;
        _start = time.GetTimestamp();
        _logger = logger;
        _host = host;
    }

    /// <summary>A tap for the exchange's WebSocket, or null when nobody observes it or the upgrade is not to WebSocket.</summary>
    public static WebSocketTap? For(HttpExchange exchange, HttpResponseHead response, TimeProvider time, ILogger logger)
    {
        // RFC 6455 §4.2.2: the server accepts with 101 and "Upgrade: websocket"; extensions in Sec-WebSocket-Extensions.
        if (exchange.WebSocketObservers is not { Count: > 0 } observers
            || !string.Equals(response.Headers.Get("Upgrade"), "websocket", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        bool deflate = response.Headers.Get("Sec-WebSocket-Extensions") is { } extensions
            && extensions.Contains("permessage-deflate", StringComparison.OrdinalIgnoreCase);
        return new WebSocketTap(observers, deflate, time, logger, exchange.Request.Host);
    }

    public void OnRelayed(bool fromClient, in ReadOnlySequence<byte> data)
    {
        var reader = fromClient ? _fromClient : _fromServer;
        if (reader.Error is not null)
        {
            return;
        }

        reader.Read(data, new Handler(this, fromClient));
        if (reader.Error is { } error)
        {
            ProxyLog.WebSocketReadStopped(_logger, _host, fromClient ? "client" : "server", error);
            foreach (var observer in _observers)
            {
                Notify(observer, static (o, s) => o.OnReadStopped(s.FromClient, s.Error), (FromClient: fromClient, Error: error));
            }
        }
    }

    /// <summary>Calls an observer; one that throws is logged and the relay goes on (its bytes are not its to stop).</summary>
    private void Notify<TState>(IWebSocketObserver observer, Action<IWebSocketObserver, TState> call, TState state)
    {
        try
        {
            call(observer, state);
        }
        catch (Exception ex)
        {
            ProxyLog.WebSocketObserverFailed(_logger, observer.GetType().Name, _host, ex);
        }
    }

    public void Dispose()
    {
        _fromClient.Dispose();
        _fromServer.Dispose();
    }

    private readonly struct Handler(WebSocketTap tap, bool fromClient) : IWebSocketMessageHandler
    {
        public void OnMessage(in WebSocketReadMessage message)
        {
            var flowMessage = new FlowWebSocketMessage(fromClient, message.Opcode, tap._time.GetElapsedTime(tap._start).TotalMilliseconds,
                message.Content, message.Length, message.IsCompressed);
            foreach (var observer in tap._observers)
            {
                tap.Notify(observer, static (o, m) => o.OnMessage(m), flowMessage);
            }
        }
    }
}
