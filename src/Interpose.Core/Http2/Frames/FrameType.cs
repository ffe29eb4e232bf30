namespace Interpose.Core.Http2;

/// <summary>The HTTP/2 frame types (RFC 9113 §6, registry in §11.2). Values outside the list are extension
/// frames: RFC 9113 §4.1 says "Implementations MUST ignore and discard frames of unknown types".</summary>
public enum FrameType : byte
{
    /// <summary>DATA (0x0, §6.1): request or response content.</summary>
    Data = 0x0,

    /// <summary>HEADERS (0x1, §6.2): opens a stream and carries a field block fragment.</summary>
    Headers = 0x1,

    /// <summary>PRIORITY (0x2, §6.3): deprecated priority signal, still parsed for its length rule.</summary>
    Priority = 0x2,

    /// <summary>RST_STREAM (0x3, §6.4): ends a stream at once.</summary>
    RstStream = 0x3,

    /// <summary>SETTINGS (0x4, §6.5): connection configuration.</summary>
    Settings = 0x4,

    /// <summary>PUSH_PROMISE (0x5, §6.6): server push (Interpose never enables it).</summary>
    PushPromise = 0x5,

    /// <summary>PING (0x6, §6.7): round-trip and liveness check.</summary>
    Ping = 0x6,

    /// <summary>GOAWAY (0x7, §6.8): graceful or error shutdown of the connection.</summary>
    GoAway = 0x7,

    /// <summary>WINDOW_UPDATE (0x8, §6.9): flow-control credit.</summary>
    WindowUpdate = 0x8,

    /// <summary>CONTINUATION (0x9, §6.10): the rest of a field block.</summary>
    Continuation = 0x9,
}
