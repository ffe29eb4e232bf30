namespace Interpose.Proxy;

/// <summary>What to do with a TLS connection once its ClientHello is known.</summary>
public enum TlsDecision
{
    /// <summary>Decrypt: present a forged certificate to the client and open TLS to the origin.</summary>
    Intercept,

    /// <summary>Relay the encrypted bytes untouched (certificate pinning, noisy hosts).</summary>
    Passthrough,

    /// <summary>Close the client connection.</summary>
    Reject,
}
