namespace Interpose.Core;

/// <summary>What the first bytes of a connection look like.</summary>
public enum SniffedProtocol
{
    /// <summary>Too few bytes to tell.</summary>
    NeedMoreData,

    /// <summary>A TLS handshake record.</summary>
    Tls,

    /// <summary>An HTTP/1.x request line (or the HTTP/2 prior-knowledge preface, which starts "PRI ").</summary>
    Http,

    /// <summary>Neither.</summary>
    Unknown,
}
