namespace Interpose.Core.Http2;

/// <summary>The SETTINGS values in force for one direction of a connection (RFC 9113 §6.5.2), starting at the
/// protocol defaults. Keep two: what the peer announced (it shapes what we send) and what we announced (it shapes
/// what we accept, applied once the peer ACKs it).</summary>
public sealed class Http2Settings
{
    /// <summary>RFC 9113 §6.5.2: SETTINGS_HEADER_TABLE_SIZE initial value.</summary>
    public const uint DefaultHeaderTableSize = 4096;

    /// <summary>RFC 9113 §6.5.2 and §6.9.2: SETTINGS_INITIAL_WINDOW_SIZE initial value (2^16-1).</summary>
    public const int DefaultInitialWindowSize = 65_535;

    /// <summary>RFC 9113 §6.5.2: SETTINGS_MAX_FRAME_SIZE initial value and lower bound (2^14).</summary>
    public const int DefaultMaxFrameSize = 16_384;

    /// <summary>RFC 9113 §6.5.2: SETTINGS_MAX_FRAME_SIZE upper bound (2^24-1).</summary>
    public const int MaxAllowedFrameSize = 16_777_215;

    /// <summary>RFC 9113 §6.9.1: the largest flow-control window (2^31-1).</summary>
    public const int MaxWindowSize = int.MaxValue;

    /// <summary>SETTINGS_HEADER_TABLE_SIZE: the ceiling of the HPACK table the sender's decoder keeps.</summary>
    public uint HeaderTableSize { get; private set; } = DefaultHeaderTableSize;

    /// <summary>SETTINGS_ENABLE_PUSH (initially true; Interpose always sends 0 and never pushes).</summary>
    public bool EnablePush { get; private set; } = true;

    /// <summary>SETTINGS_MAX_CONCURRENT_STREAMS; <see langword="null"/> means unlimited (the initial value).</summary>
    public uint? MaxConcurrentStreams { get; private set; }

    /// <summary>SETTINGS_INITIAL_WINDOW_SIZE: the initial send window of every stream.</summary>
    public int InitialWindowSize { get; private set; } = DefaultInitialWindowSize;

    /// <summary>SETTINGS_MAX_FRAME_SIZE: the largest frame payload the sender accepts.</summary>
    public int MaxFrameSize { get; private set; } = DefaultMaxFrameSize;

    /// <summary>SETTINGS_MAX_HEADER_LIST_SIZE; <see langword="null"/> means unlimited (the initial value).</summary>
    public uint? MaxHeaderListSize { get; private set; }

    /// <summary>SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3): extended CONNECT allowed.</summary>
    public bool EnableConnectProtocol { get; private set; }

    /// <summary>Checks one value against RFC 9113 §6.5.2. Unknown identifiers pass (they are ignored).</summary>
    /// <param name="parameter">The identifier.</param>
    /// <param name="value">The value.</param>
    /// <exception cref="Http2ConnectionException">ENABLE_PUSH or ENABLE_CONNECT_PROTOCOL other than 0/1, or a MAX_FRAME_SIZE
    /// out of range (PROTOCOL_ERROR); INITIAL_WINDOW_SIZE above 2^31-1 (FLOW_CONTROL_ERROR).</exception>
    public static void Validate(SettingsParameter parameter, uint value)
    {
        switch (parameter)
        {
            // RFC 9113 §6.5.2: "Any value other than 0 or 1 MUST be treated as a connection error of type PROTOCOL_ERROR."
            case SettingsParameter.EnablePush when value > 1:
            // RFC 8441 §3: the same rule for SETTINGS_ENABLE_CONNECT_PROTOCOL.
            case SettingsParameter.EnableConnectProtocol when value > 1:
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"{parameter} = {value}; only 0 or 1 are allowed (RFC 9113 §6.5.2).");

            // RFC 9113 §6.5.2: "Values above the maximum flow-control window size of 2^31-1 MUST be treated as a
            // connection error of type FLOW_CONTROL_ERROR."
            case SettingsParameter.InitialWindowSize when value > MaxWindowSize:
                throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, $"SETTINGS_INITIAL_WINDOW_SIZE = {value} exceeds 2^31-1 (RFC 9113 §6.5.2).");

            // RFC 9113 §6.5.2: "Values outside this range MUST be treated as a connection error of type PROTOCOL_ERROR."
            case SettingsParameter.MaxFrameSize when value is < DefaultMaxFrameSize or > MaxAllowedFrameSize:
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"SETTINGS_MAX_FRAME_SIZE = {value} is outside 16384..16777215 (RFC 9113 §6.5.2).");
        }
    }

    /// <summary>Validates and applies one setting; unknown identifiers are ignored (RFC 9113 §6.5.2).</summary>
    /// <param name="setting">The entry.</param>
    /// <exception cref="Http2ConnectionException">The value is invalid (see <see cref="Validate"/>).</exception>
    public void Apply(Http2Setting setting)
    {
        Validate(setting.Parameter, setting.Value);
        switch (setting.Parameter)
        {
            case SettingsParameter.HeaderTableSize:
                HeaderTableSize = setting.Value;
                break;
            case SettingsParameter.EnablePush:
                EnablePush = setting.Value == 1;
                break;
            case SettingsParameter.MaxConcurrentStreams:
                MaxConcurrentStreams = setting.Value;
                break;
            case SettingsParameter.InitialWindowSize:
                InitialWindowSize = (int)setting.Value;
                break;
            case SettingsParameter.MaxFrameSize:
                MaxFrameSize = (int)setting.Value;
                break;
            case SettingsParameter.MaxHeaderListSize:
                MaxHeaderListSize = setting.Value;
                break;
            case SettingsParameter.EnableConnectProtocol:
                EnableConnectProtocol = setting.Value == 1;
                break;
        }
    }

    /// <summary>Applies every entry of a SETTINGS frame in order (RFC 9113 §6.5.3: "processed in the order in which
    /// they appear"). An ACK carries nothing and changes nothing.</summary>
    /// <param name="frame">A SETTINGS frame from <see cref="Http2FrameReader"/>.</param>
    /// <returns>The change of SETTINGS_INITIAL_WINDOW_SIZE (new minus old), to apply to every open stream's send
    /// window with <see cref="FlowWindow.ApplyInitialWindowSizeDelta"/> (RFC 9113 §6.9.2).</returns>
    /// <exception cref="ArgumentException">The frame is not SETTINGS.</exception>
    /// <exception cref="Http2ConnectionException">A value is invalid.</exception>
    public int Apply(in Http2Frame frame)
    {
        if (frame.Type != FrameType.Settings)
        {
            throw new ArgumentException($"Expected a SETTINGS frame, got {frame.Type}.", nameof(frame));
        }

        int before = InitialWindowSize;
        for (int i = 0; i < frame.SettingsCount; i++)
        {
            Apply(frame.GetSetting(i));
        }

        return InitialWindowSize - before;
    }
}
