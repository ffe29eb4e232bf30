using Interpose.Core.Flows;

namespace Interpose.Proxy.Internal;

/// <summary>
/// What the flow recorder keeps of a WebSocket: its messages up to a content budget and a count, and how it closed.
/// Filled by both directions' relays at once (<see cref="IWebSocketObserver"/>), read once the exchange is done.
/// </summary>
internal sealed class WebSocketRecording(long maxContentBytes) : IWebSocketObserver
{
    /// <summary>
    /// How many messages one flow keeps; later ones are only counted. A bound on a long-lived socket's memory between
    /// its start and its close (a chat or a price feed sends thousands a minute); mitmproxy keeps them all.
    /// </summary>
    internal const int MaxMessages = 10_000;

    private readonly Lock _lock = new();
    private readonly List<FlowWebSocketMessage> _messages = [];
    private long _contentBytes;
    private long _dropped;
    private int? _closeCode;
    private string? _closeReason;
    private bool? _closedByClient;
    private string? _parseError;

    public void OnMessage(FlowWebSocketMessage message)
    {
        lock (_lock)
        {
            if (message.Opcode == WebSocketOpcode.Close && _closedByClient is null)
            {
                _closedByClient = message.FromClient;
                (_closeCode, _closeReason) = CloseFrame(message.Content.Span);
            }

            if (_messages.Count >= MaxMessages)
            {
                _dropped++;
                return;
            }

            // Past the budget a message keeps its length, kind and time, not its bytes (as bodies past the cap do). The
            // part kept is copied: a slice would hold the reader's whole array (up to a MiB per message, from a few
            // bytes on the wire with permessage-deflate), which the budget would not count.
            if (_contentBytes + message.Content.Length > maxContentBytes)
            {
                int room = (int)Math.Min(Math.Max(0, maxContentBytes - _contentBytes), message.Content.Length);
                message = message with { Content = room == 0 ? ReadOnlyMemory<byte>.Empty : message.Content[..room].ToArray() };
            }

            _contentBytes += message.Content.Length;
            _messages.Add(message);
        }
    }

    public void OnReadStopped(bool fromClient, string reason)
    {
        lock (_lock)
        {
            _parseError ??= (fromClient ? "client: " : "server: ") + reason;
        }
    }

    /// <summary>The bytes of message content kept so far.</summary>
    public long ContentBytes
    {
        get
        {
            lock (_lock)
            {
                return _contentBytes;
            }
        }
    }

    public FlowWebSocket ToFlow()
    {
        lock (_lock)
        {
            return new FlowWebSocket
            {
                Messages = [.. _messages],
                DroppedMessages = _dropped,
                CloseCode = _closeCode,
                CloseReason = _closeReason,
                ClosedByClient = _closedByClient,
                ParseError = _parseError,
            };
        }
    }

    /// <summary>RFC 6455 §5.5.1: a Close frame's body, when present, starts with a 2-byte status code, then a UTF-8 reason.</summary>
    private static (int? Code, string? Reason) CloseFrame(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 2)
        {
            return (null, null);
        }

        int code = (payload[0] << 8) | payload[1];
        return (code, payload.Length > 2 ? System.Text.Encoding.UTF8.GetString(payload[2..]) : null);
    }
}
