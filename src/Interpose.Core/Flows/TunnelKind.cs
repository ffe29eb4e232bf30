namespace Interpose.Core.Flows;

/// <summary>How a tunnel's bytes were relayed.</summary>
public enum TunnelKind
{
    /// <summary>TLS passed through without interception (ignored host, or a hook's decision).</summary>
    TlsPassthrough,

    /// <summary>Bytes that were neither TLS nor HTTP, relayed as they came.</summary>
    Raw,

    /// <summary>An upgraded connection (101) relayed as bytes.</summary>
    Upgraded,
}
