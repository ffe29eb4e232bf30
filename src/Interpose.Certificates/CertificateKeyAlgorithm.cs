namespace Interpose.Certificates;

/// <summary>The key algorithm of a certificate Interpose creates.</summary>
public enum CertificateKeyAlgorithm
{
    /// <summary>ECDSA on NIST P-256 (secp256r1) with SHA-256: small, fast to generate and sign, accepted by every TLS client. The default.</summary>
    EcdsaP256,

    /// <summary>RSA with a 3072-bit modulus (NIST SP 800-57: 128-bit security, like P-256) and PKCS#1 v1.5 SHA-256 signatures, for clients without ECDSA.</summary>
    Rsa3072,
}
