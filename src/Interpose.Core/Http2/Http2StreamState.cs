namespace Interpose.Core.Http2;

/// <summary>The stream states of RFC 9113 §5.1.</summary>
public enum Http2StreamState
{
    /// <summary>Not yet opened.</summary>
    Idle,

    /// <summary>Reserved by a PUSH_PROMISE we sent (Interpose never pushes; kept for completeness).</summary>
    ReservedLocal,

    /// <summary>Reserved by a PUSH_PROMISE we received (Interpose disables push; kept for completeness).</summary>
    ReservedRemote,

    /// <summary>Both sides may send frames.</summary>
    Open,

    /// <summary>We sent END_STREAM; the peer may still send.</summary>
    HalfClosedLocal,

    /// <summary>The peer sent END_STREAM; we may still send.</summary>
    HalfClosedRemote,

    /// <summary>Terminal.</summary>
    Closed,
}
