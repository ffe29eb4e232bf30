using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Certificates;

/// <summary>Creates the self-signed root certificate of a new install.</summary>
internal static class RootCertificateFactory
{
    // Long enough that users do not re-install trust every year, short of the 20-25 years public roots get; mitmproxy
    // (certs.py CA_EXPIRY) and HTTP Toolkit also use about 10 years.
    internal static readonly TimeSpan Validity = TimeSpan.FromDays(3650);

    // Same allowance for client clock skew as leaves get (see LeafCertificateForge.NotBeforeBackdate).
    internal static readonly TimeSpan NotBeforeBackdate = TimeSpan.FromDays(2);

    // RSA modulus for CertificateKeyAlgorithm.Rsa3072 (NIST SP 800-57 Part 1 Table 2: 128-bit security).
    internal const int RsaKeySize = 3072;

    /// <summary>A new root: the certificate with its private key, and that key as PKCS#8 DER for storage.</summary>
    public static (X509Certificate2 Certificate, byte[] Pkcs8PrivateKey) Create(CertificateKeyAlgorithm algorithm, TimeProvider timeProvider)
    {
        var subject = BuildSubject();
        using AsymmetricAlgorithm key = algorithm == CertificateKeyAlgorithm.Rsa3072
            ? RSA.Create(RsaKeySize)
            : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = key is RSA rsa
            ? new CertificateRequest(subject, rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest(subject, (ECDsa)key, HashAlgorithmName.SHA256);

        // RFC 5280 §4.2.1.9: CA certificates MUST mark basicConstraints critical with cA TRUE; pathLenConstraint 0
        // because this CA only ever signs leaves, so a leaked leaf key cannot mint further certificates.
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));

        // RFC 5280 §4.2.1.3: a CA signing certificates sets keyCertSign and SHOULD mark the extension critical.
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));

        // RFC 5280 §4.2.1.2: CAs MUST include a subject key identifier; leaves point back to it (§4.2.1.1).
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));

        var now = timeProvider.GetUtcNow();
        var generator = key is RSA rsaKey
            ? X509SignatureGenerator.CreateForRSA(rsaKey, RSASignaturePadding.Pkcs1)
            : X509SignatureGenerator.CreateForECDsa((ECDsa)key);

        // Self-signed through a generator (not CreateSelfSigned) so the serial is our 16 CSPRNG bytes.
        using var unsigned = request.Create(subject, generator, now - NotBeforeBackdate, now + Validity, CertificateSerial.Create());
        var certificate = key is RSA withRsa ? unsigned.CopyWithPrivateKey(withRsa) : unsigned.CopyWithPrivateKey((ECDsa)key);
        return (certificate, key.ExportPkcs8PrivateKey());
    }

    private static X500DistinguishedName BuildSubject()
    {
        // Unique per install so users can tell their CA from another machine's in a trust store listing.
        var machine = Environment.MachineName;
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var commonName = string.IsNullOrWhiteSpace(machine) ? $"Interpose CA ({id})" : $"Interpose CA ({machine} {id})";
        // X500DistinguishedNameBuilder encodes RDNs in reverse order of addition; this yields the usual
        // "CN=..., O=Interpose" display with O outermost in the DER, as openssl and browsers expect.
        var builder = new X500DistinguishedNameBuilder();
        builder.AddCommonName(commonName);
        builder.AddOrganizationName("Interpose");
        return builder.Build();
    }
}
