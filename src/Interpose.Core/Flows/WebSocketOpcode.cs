namespace Interpose.Core.Flows;

/// <summary>The kind of a WebSocket message: the opcode of its first frame (RFC 6455 §5.2, §11.8).</summary>
public enum WebSocketOpcode
{
    /// <summary>A UTF-8 text message (0x1).</summary>
    Text = 1,

    /// <summary>A binary message (0x2).</summary>
    Binary = 2,

    /// <summary>A Close control frame (0x8).</summary>
    Close = 8,

    /// <summary>A Ping control frame (0x9).</summary>
    Ping = 9,

    /// <summary>A Pong control frame (0xA).</summary>
    Pong = 10,
}
