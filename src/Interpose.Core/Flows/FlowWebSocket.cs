using System.Text.Json.Serialization;

namespace Interpose.Core.Flows;

/// <summary>
/// The WebSocket carried by an <see cref="HttpFlow"/> whose response was a 101 with <c>Upgrade: websocket</c>
/// (RFC 6455): its messages in the order they completed, and how it was closed.
/// </summary>
/// <remarks>
/// Messages are kept up to the recorder's caps: past the content cap a message keeps its length and opcode without its
/// bytes; past the count cap messages are only counted (<see cref="DroppedMessages"/>). When the relayed bytes stop
/// being valid WebSocket frames, the proxy stops reading messages (the bytes still pass unchanged) and says why in
/// <see cref="ParseError"/>.
/// </remarks>
public sealed record FlowWebSocket
{
    /// <summary>The messages, both directions, in the order they completed.</summary>
    public IReadOnlyList<FlowWebSocketMessage> Messages { get; init; } = [];

    /// <summary>Messages that were not kept at all (over the recorder's count cap).</summary>
    public long DroppedMessages { get; init; }

    /// <summary>The status code of the first Close frame (RFC 6455 §7.1.5); null when none carried one.</summary>
    public int? CloseCode { get; init; }

    /// <summary>The reason of the first Close frame; null when none carried one.</summary>
    public string? CloseReason { get; init; }

    /// <summary>Whether the client sent the first Close frame; null when neither side sent one.</summary>
    public bool? ClosedByClient { get; init; }

    /// <summary>Why the proxy stopped reading messages in a direction, if it did.</summary>
    public string? ParseError { get; init; }
}

/// <summary>One WebSocket message (RFC 6455 §5.4: a data message put together from its fragments, or a control frame).</summary>
/// <param name="FromClient">Whether the client sent it.</param>
/// <param name="Opcode">Its kind.</param>
/// <param name="OffsetMs">When its last frame passed the proxy, in milliseconds after the 101 was relayed.</param>
/// <param name="Content">The payload, unmasked and, with permessage-deflate, decompressed (unless
/// <see cref="IsCompressed"/>); its first bytes only when <see cref="IsTruncated"/>.</param>
/// <param name="Length">The payload's whole length (decompressed unless <see cref="IsCompressed"/>).</param>
/// <param name="IsCompressed">True when the message was compressed (RFC 7692) and was not decompressed (not valid
/// DEFLATE, or it inflated past the proxy's 64 MiB bound), so <see cref="Content"/> and <see cref="Length"/> are the
/// compressed payload's.</param>
public sealed record FlowWebSocketMessage(bool FromClient, WebSocketOpcode Opcode, double OffsetMs, ReadOnlyMemory<byte> Content, long Length, bool IsCompressed = false)
{
    /// <summary>True when <see cref="Content"/> holds less than the whole payload.</summary>
    [JsonIgnore]
    public bool IsTruncated => Content.Length < Length;
}
