namespace Interpose.Core.Flows;

/// <summary>The TLS session of one side of a flow.</summary>
/// <param name="Version">The negotiated protocol version (<c>Tls13</c>), null when unknown.</param>
/// <param name="CipherSuite">The negotiated cipher suite's IANA name, null when unknown.</param>
/// <param name="Alpn">The negotiated ALPN protocol, null when none.</param>
/// <param name="Sni">The server name of the ClientHello (the client's on the client side, the proxy's on the origin
/// side), null when none.</param>
public sealed record FlowTls(string? Version, string? CipherSuite, string? Alpn, string? Sni)
{
    /// <summary>
    /// The certificates the peer presented, leaf first, each in DER; empty when none was recorded. On the origin side
    /// this is the origin's chain (today only its leaf: the chain the origin sent is not kept by the connection).
    /// </summary>
    public IReadOnlyList<byte[]> CertificateChain { get; init; } = [];
}
