using Interpose.Core.Flows;

namespace Interpose.Proxy;

/// <summary>
/// Watches the messages of a WebSocket the proxy relays (RFC 6455), without changing them: the bytes still pass
/// exactly as they arrived. Add one with <see cref="HttpExchange.ObserveWebSocket"/> in a request hook; it is used
/// when the origin accepts the upgrade (101 with <c>Upgrade: websocket</c>) on an HTTP/1.1 client connection.
/// </summary>
/// <remarks>
/// Messages are read from the relayed bytes: unmasked, fragments joined, permessage-deflate (RFC 7692) decompressed.
/// Each carries at most <see cref="MaxContentBytes"/> of its payload (its whole length is counted). The two
/// directions are relayed concurrently, so the methods may be called from two threads at once; they are called inline
/// by the relay, so keep them short (hand work to a bounded queue rather than doing I/O inline).
/// </remarks>
public interface IWebSocketObserver
{
    /// <summary>How many payload bytes of each message an observer is given: 1 MiB, the recorder's default body cap.</summary>
    const int MaxContentBytes = 1024 * 1024;

    /// <summary>A message completed.</summary>
    /// <param name="message">The message; the observer may keep it.</param>
    void OnMessage(FlowWebSocketMessage message);

    /// <summary>One direction's bytes stopped being valid WebSocket frames: no more messages will come from it (the
    /// bytes are still relayed).</summary>
    /// <param name="fromClient">Which direction.</param>
    /// <param name="reason">What was wrong.</param>
    void OnReadStopped(bool fromClient, string reason);
}
