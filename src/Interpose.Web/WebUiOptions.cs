using System.Net;
using System.Security.Cryptography.X509Certificates;
using Interpose.Proxy.Intercept;
using Interpose.Store;

namespace Interpose.Web;

/// <summary>What <see cref="WebUiServer"/> serves and where.</summary>
public sealed class WebUiOptions
{
    /// <summary>The UI's default port, beside the proxy's 8080 (mitmweb uses 8081 too).</summary>
    public const int DefaultPort = 8081;

    /// <summary>Where the UI listens; 127.0.0.1:8081 by default.</summary>
    public IPEndPoint EndPoint { get; set; } = new(IPAddress.Loopback, DefaultPort);

    /// <summary>Allows a non-loopback <see cref="EndPoint"/> (anyone who reaches it and has the token sees every flow);
    /// the same explicit opt-in as an open proxy.</summary>
    public bool AllowNonLoopback { get; set; }

    /// <summary>The flows shown. Required.</summary>
    public IFlowStore? Store { get; set; }

    /// <summary>Whether the store may be changed (delete, mark, comment, duplicate, clear).</summary>
    public bool ReadOnly { get; set; }

    /// <summary>The live list's source: the store's observer (<see cref="MemoryFlowStore"/> or <see cref="SqliteFlowStore"/>
    /// given it when made), which tells it the flows stored and evicted; none (a static list) when null.</summary>
    public FlowFeed? Feed { get; set; }

    /// <summary>The intercept addon the UI drives; no intercept when null.</summary>
    public InterceptAddon? Intercept { get; set; }

    /// <summary>The running proxy's own listener, through which flows are replayed; no replay when null.</summary>
    public Uri? ProxyUrl { get; set; }

    /// <summary>The proxy's CA, trusted by the replayer for HTTPS through the proxy; required with <see cref="ProxyUrl"/>.</summary>
    public X509Certificate2? ProxyCertificateAuthority { get; set; }

    /// <summary>The addon (first among the proxy's) that marks the UI's replays as replays; replays are recorded
    /// unmarked when null.</summary>
    public WebReplayMarker? ReplayMarker { get; set; }

    /// <summary>The secret every API call carries; a random one when null.</summary>
    public string? Token { get; set; }

    /// <summary>What the page shows as the source of the flows (a file name).</summary>
    public string? SourceName { get; set; }

    /// <summary>The clock (SSE batching, download tickets).</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
