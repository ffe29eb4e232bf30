using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Authentication;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The TLS the proxy speaks on both sides: TLS 1.2 and 1.3 only, and for TLS 1.2 only forward-secret AEAD suites,
/// so the proxy never offers an origin, nor accepts from a client, a weaker handshake than a current browser.
/// </summary>
internal static class TlsPolicy
{
    /// <summary>TLS 1.2 minimum, 1.3 preferred (negotiation picks the highest both support).</summary>
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>Only HTTP/1.1 for now; the connection layer dispatches on the negotiated protocol so h2 can slot in.</summary>
    public static readonly List<SslApplicationProtocol> ApplicationProtocols = [SslApplicationProtocol.Http11];

    /// <summary>What the client side answers an offer of h2 with when HTTP/2 is on: h2 first, http/1.1 as the fallback.</summary>
    private static readonly List<SslApplicationProtocol> Http2First = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];

    private static readonly SslApplicationProtocol Http10 = new("http/1.0");

    private static readonly List<SslApplicationProtocol> Http10Only = [Http10];

    /// <summary>
    /// What to answer a client's ALPN offer with: http/1.1 when offered, else http/1.0 (curl -0 offers only that),
    /// else nothing, so that the handshake completes without ALPN rather than failing with no_application_protocol.
    /// With <paramref name="http2"/>, an offer of h2 is answered with h2 (RFC 9113 §3.2: "h2" over TLS).
    /// </summary>
    /// <param name="offered">The client's ALPN list.</param>
    /// <param name="http2">Whether the proxy speaks HTTP/2 to clients (<see cref="ProxyOptions.Http2"/>).</param>
    public static List<SslApplicationProtocol>? ServerProtocolsFor(IReadOnlyList<string> offered, bool http2 = false)
    {
        var http10 = false;
        var http11 = false;
        foreach (var protocol in offered)
        {
            if (http2 && protocol == "h2")
            {
                return Http2First;
            }

            http11 |= protocol == "http/1.1";
            http10 |= protocol == "http/1.0";
        }

        return http11 ? ApplicationProtocols : http10 ? Http10Only : null;
    }

    /// <summary>
    /// ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2, and the TLS 1.3 suites. CipherSuitesPolicy is honoured on
    /// Linux (OpenSSL); elsewhere the OS policy applies.
    /// </summary>
    public static CipherSuitesPolicy? CipherSuites { get; } = CreateCipherSuites();

    /// <summary>
    /// The suites to set for a server's connections: <see cref="CipherSuites"/>, or none when the process's OpenSSL
    /// configuration holds the same list (<see cref="ProxyOptions.UseOpenSslCipherConfiguration"/>).
    /// </summary>
    public static CipherSuitesPolicy? CipherSuitesFor(ProxyOptions options) => options.UseOpenSslCipherConfiguration ? null : CipherSuites;

    private static CipherSuitesPolicy? CreateCipherSuites()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            return null;
        }

        return new CipherSuitesPolicy(
        [
            TlsCipherSuite.TLS_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ]);
    }
}
