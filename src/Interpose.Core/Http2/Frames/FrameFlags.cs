using System.Diagnostics.CodeAnalysis;

namespace Interpose.Core.Http2;

/// <summary>The flag bits of an HTTP/2 frame header (RFC 9113 §4.1). A flag's meaning depends on the frame type;
/// "Flags that have no defined semantics for a particular frame type MUST be ignored".</summary>
[Flags]
[SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix", Justification = "RFC 9113 §4.1 calls the field Flags; the name says what it is.")]
[SuppressMessage("Design", "CA1069:Enums values should not be duplicated", Justification = "RFC 9113 gives END_STREAM (DATA, HEADERS) and ACK (SETTINGS, PING) the same bit.")]
public enum FrameFlags : byte
{
    /// <summary>No flag set.</summary>
    None = 0x0,

    /// <summary>END_STREAM (0x1) on DATA and HEADERS (§6.1, §6.2): the sender's last frame on the stream.</summary>
    EndStream = 0x1,

    /// <summary>ACK (0x1) on SETTINGS and PING (§6.5, §6.7).</summary>
    Ack = 0x1,

    /// <summary>END_HEADERS (0x4) on HEADERS, PUSH_PROMISE and CONTINUATION: the field block is complete.</summary>
    EndHeaders = 0x4,

    /// <summary>PADDED (0x8) on DATA, HEADERS and PUSH_PROMISE: a Pad Length octet and padding are present.</summary>
    Padded = 0x8,

    /// <summary>PRIORITY (0x20) on HEADERS: the deprecated priority fields are present (§6.2).</summary>
    Priority = 0x20,
}
