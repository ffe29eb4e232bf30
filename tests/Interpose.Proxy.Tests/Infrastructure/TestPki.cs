using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>Certificates for test origins: a private root, and leaves that are good, expired, for the wrong host, or self-signed.</summary>
public static class TestPki
{
    private static readonly Lazy<X509Certificate2> OriginRootLazy = new(() => CreateRoot("Interpose Test Origin Root"));

    /// <summary>The root that signs test origins' certificates (trusted through ProxyOptions.UpstreamTrustedRoots).</summary>
    public static X509Certificate2 OriginRoot => OriginRootLazy.Value;

    public static X509Certificate2 CreateRoot(string commonName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + commonName, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 1, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.CreateSelfSigned(now.AddDays(-365), now.AddYears(1));
        return Reload(cert);
    }

    /// <summary>A server certificate for <paramref name="dnsName"/> (and 127.0.0.1) issued by <paramref name="issuer"/>.</summary>
    public static X509Certificate2 Issue(X509Certificate2 issuer, string dnsName, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = CreateServerRequest(key, dnsName);
        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var issued = request.Create(issuer, notBefore ?? now.AddDays(-1), notAfter ?? now.AddDays(30), serial);
        using var withKey = issued.CopyWithPrivateKey(key);
        return Reload(withKey);
    }

    /// <summary>A self-signed server certificate for <paramref name="dnsName"/>.</summary>
    public static X509Certificate2 SelfSigned(string dnsName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = CreateServerRequest(key, dnsName);
        var now = DateTimeOffset.UtcNow;
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        return Reload(cert);
    }

    private static CertificateRequest CreateServerRequest(ECDsa key, string dnsName)
    {
        var request = new CertificateRequest("CN=" + dnsName, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(dnsName);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        return request;
    }

    /// <summary>Round-trips through PKCS#12 so that SslStream on Linux gets a certificate with a usable private key.</summary>
    private static X509Certificate2 Reload(X509Certificate2 cert) =>
        X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
}
