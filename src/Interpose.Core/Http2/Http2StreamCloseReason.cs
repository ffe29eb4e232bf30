namespace Interpose.Core.Http2;

/// <summary>How a stream reached <see cref="Http2StreamState.Closed"/>: RFC 9113 §5.1 treats late frames differently
/// for each.</summary>
public enum Http2StreamCloseReason
{
    /// <summary>Not closed.</summary>
    None,

    /// <summary>Both sides sent END_STREAM.</summary>
    EndStream,

    /// <summary>We sent RST_STREAM.</summary>
    ResetSent,

    /// <summary>The peer sent RST_STREAM.</summary>
    ResetReceived,
}
