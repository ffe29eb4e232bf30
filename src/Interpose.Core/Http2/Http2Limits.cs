namespace Interpose.Core.Http2;

/// <summary>The HTTP/2 attack budgets and sizing defaults, one place, each with its source. The numbers come from
/// /shared/reference/layers-and-http2.md §2 and §5 (Kestrel, Go x/net, nginx, nghttp2); docs/security.md lists them
/// for users.</summary>
public static class Http2Limits
{
    /// <summary>SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce (RST REFUSED_STREAM above it, RFC 9113 §5.1.2).
    /// Kestrel's Http2Limits.MaxStreamsPerConnection default (100); RFC 9113 §6.5.2 recommends "no smaller than 100".</summary>
    public const int MaxConcurrentStreams = 100;

    /// <summary>SETTINGS_HEADER_TABLE_SIZE we advertise: the HPACK dynamic table ceiling of our decoder. RFC 9113
    /// §6.5.2 default, also Kestrel's HeaderTableSize.</summary>
    public const int HeaderTableSize = 4096;

    /// <summary>SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce: decoded name + value + 32 per field (RFC 9113
    /// §6.5.2). Kestrel's MaxRequestHeadersTotalSize (32 KiB); nginx's 4 × 8 KiB budget.</summary>
    public const int MaxHeaderListSize = 32 * 1024;

    /// <summary>Most fields in one field section (the many-small-fields "HTTP/2 bomb"). Kestrel's MaxRequestHeaderCount (100).</summary>
    public const int MaxHeaderFieldCount = 100;

    /// <summary>Most encoded octets in one field block (HEADERS + its CONTINUATIONs): CONTINUATION flood,
    /// CVE-2024-27316 and relatives. Kestrel's 2 × MaxRequestHeadersTotalSize (64 KiB).</summary>
    public const int MaxFieldBlockSize = 64 * 1024;

    /// <summary>Most CONTINUATION frames after one HEADERS: CONTINUATION flood with tiny frames. Between nghttp2 (8)
    /// and Envoy (512): 32 frames of 16 KiB already exceed <see cref="MaxFieldBlockSize"/>.</summary>
    public const int MaxContinuationFrames = 32;

    /// <summary>Time from HEADERS to END_HEADERS before GOAWAY PROTOCOL_ERROR. Kestrel's RequestHeadersTimeout (30 s).</summary>
    public static readonly TimeSpan FieldBlockTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Rapid reset (CVE-2023-44487) and MadeYouReset (CVE-2025-8671): stream resets — the peer's RST_STREAM
    /// and the ones we send — allowed per <see cref="ResetBudgetWindow"/> before GOAWAY ENHANCE_YOUR_CALM. Kestrel's
    /// EnhanceYourCalmMaximumCount × EnhanceYourCalmTickWindowCount (20 × 5 = 100).</summary>
    public const int ResetBudgetPerWindow = 100;

    /// <summary>The window of <see cref="ResetBudgetPerWindow"/>: Kestrel's 5 heartbeat ticks of 1 s.</summary>
    public static readonly TimeSpan ResetBudgetWindow = TimeSpan.FromSeconds(5);

    /// <summary>RST_STREAM frames (other than NO_ERROR) an origin may send per <see cref="ResetBudgetWindow"/> before the
    /// proxy treats it as misbehaving: GOAWAY ENHANCE_YOUR_CALM and the connection leaves the pool. Each reset fails or
    /// retries an exchange, so an origin resetting at will makes the proxy do work for nothing. HTTP clients (Go's
    /// Transport, SocketsHttpHandler) have no such budget; the number is the client side's, Kestrel's
    /// EnhanceYourCalmMaximumCount × EnhanceYourCalmTickWindowCount (20 × 5 = 100 per 5 s).</summary>
    public const int OriginResetBudgetPerWindow = ResetBudgetPerWindow;

    /// <summary>Streams over one connection's life before a graceful GOAWAY (a backstop for rapid reset at a rate under
    /// <see cref="ResetBudgetPerWindow"/>). nginx's keepalive_requests is 1,000 and this was 10,000 until a benchmark showed that a
    /// busy HTTP/2 client (gRPC, h2load) at 10,000 requests per second per connection spends that in a second, and a
    /// client that does not reconnect after GOAWAY (h2load) then stops; Kestrel, Go and Envoy have no such cap. 100,000
    /// is a connection's life of minutes at browser rates and about ten seconds at full speed on one core.</summary>
    public const int MaxStreamsPerConnection = 100_000;

    /// <summary>PING and SETTINGS frames allowed per <see cref="ControlFrameBudgetWindow"/> before GOAWAY
    /// ENHANCE_YOUR_CALM (CVE-2019-9512 ping flood, CVE-2019-9515 settings flood): 100 per second (reference §5).</summary>
    public const int ControlFrameBudgetPerWindow = 100;

    /// <summary>The window of <see cref="ControlFrameBudgetPerWindow"/>.</summary>
    public static readonly TimeSpan ControlFrameBudgetWindow = TimeSpan.FromSeconds(1);

    /// <summary>Empty DATA frames without END_STREAM and empty CONTINUATION frames allowed per
    /// <see cref="EmptyFrameBudgetWindow"/> (CVE-2019-9518 empty frames flood): 100 per minute (reference §5).</summary>
    public const int EmptyFrameBudgetPerWindow = 100;

    /// <summary>The window of <see cref="EmptyFrameBudgetPerWindow"/>.</summary>
    public static readonly TimeSpan EmptyFrameBudgetWindow = TimeSpan.FromMinutes(1);

    /// <summary>WINDOW_UPDATE frames allowed per <see cref="ControlFrameBudgetWindow"/> (CVE-2019-9517-style floods of
    /// tiny credits): Interpose's own choice, ten times the control budget because a busy peer sends one per stream.</summary>
    public const int WindowUpdateBudgetPerWindow = 1_000;

    /// <summary>Our initial stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). Reference §2 "suggested Interpose
    /// start": 256 KiB (Kestrel uses 768 KiB); worst-case buffered bytes per stream are bounded by it.</summary>
    public const int InitialStreamWindowSize = 256 * 1024;

    /// <summary>Our connection receive window (raised by a WINDOW_UPDATE on stream 0 after the preface). Kestrel's
    /// InitialConnectionWindowSize (1 MiB); worst-case buffered request bytes = connections × this.</summary>
    public const int InitialConnectionWindowSize = 1024 * 1024;

    /// <summary>SETTINGS_MAX_FRAME_SIZE we advertise: the RFC 9113 §6.5.2 default (Kestrel's and SocketsHttpHandler's too).</summary>
    public const int MaxFrameSize = Http2Settings.DefaultMaxFrameSize;

    /// <summary>Longest time to wait for a SETTINGS ACK before GOAWAY SETTINGS_TIMEOUT (RFC 9113 §6.5.3 leaves the value
    /// open): 10 s, Go x/net does not time out, Kestrel neither; a bounded wait is cheap.</summary>
    public static readonly TimeSpan SettingsAckTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Longest time a stream waits for send window (a zero-window stall: data to send, the peer never opens
    /// its window) before it is reset with CANCEL. nginx's send_timeout (60 s), which bounds its HTTP/2 streams blocked
    /// on flow control the same way; Kestrel bounds it through MinResponseDataRate.</summary>
    public static readonly TimeSpan SendWindowStallTimeout = TimeSpan.FromSeconds(60);
}
