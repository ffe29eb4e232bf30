namespace Interpose.Core.Http2;

/// <summary>The SETTINGS parameter identifiers (RFC 9113 §6.5.2; 0x8 from RFC 8441 §3). "An endpoint that receives a
/// SETTINGS frame with any unknown or unsupported identifier MUST ignore that setting."</summary>
public enum SettingsParameter : ushort
{
    /// <summary>SETTINGS_HEADER_TABLE_SIZE (0x1): the HPACK dynamic table ceiling for the sender's decoder (default 4096).</summary>
    HeaderTableSize = 0x1,

    /// <summary>SETTINGS_ENABLE_PUSH (0x2): 0 or 1 (default 1).</summary>
    EnablePush = 0x2,

    /// <summary>SETTINGS_MAX_CONCURRENT_STREAMS (0x3): streams the sender lets its peer open (default unlimited).</summary>
    MaxConcurrentStreams = 0x3,

    /// <summary>SETTINGS_INITIAL_WINDOW_SIZE (0x4): initial stream window (default 65,535; at most 2^31-1).</summary>
    InitialWindowSize = 0x4,

    /// <summary>SETTINGS_MAX_FRAME_SIZE (0x5): largest payload the sender accepts (16,384..16,777,215).</summary>
    MaxFrameSize = 0x5,

    /// <summary>SETTINGS_MAX_HEADER_LIST_SIZE (0x6): advisory limit on decoded field sections (default unlimited).</summary>
    MaxHeaderListSize = 0x6,

    /// <summary>SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8, RFC 8441 §3): extended CONNECT, 0 or 1.</summary>
    EnableConnectProtocol = 0x8,
}
