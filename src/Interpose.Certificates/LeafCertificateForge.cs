using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Certificates;

/// <summary>
/// Signs leaf certificates for one host name or IP address with the CA. By default every leaf carries the same key
/// pair, generated once on first use, so a forge costs one signature rather than a key generation.
/// </summary>
internal sealed class LeafCertificateForge : IDisposable
{
    // Clients with a clock behind ours would reject a certificate "not yet valid"; mitmproxy back-dates two days
    // (certs.py) and martian one hour. Two days covers time-zone mistakes and phones with stale clocks.
    internal static readonly TimeSpan NotBeforeBackdate = TimeSpan.FromDays(2);

    // Chrome and Safari reject TLS leaves valid for more than 398 days (CA/Browser Forum BR §6.3.2: 397); 365 days
    // stays well under the limit even with the back-dating added.
    internal static readonly TimeSpan Validity = TimeSpan.FromDays(365);

    // RFC 5280 §4.2.1.9: cA FALSE; marked critical, as mitmproxy and public CAs do, so no client mistakes a leaf for a CA.
    private static readonly X509BasicConstraintsExtension EndEntityConstraints = new(false, false, 0, true);

    // RFC 5280 §4.2.1.12: serverAuth only; not critical, as in public TLS certificates.
    private static readonly X509EnhancedKeyUsageExtension ServerAuthenticationUsage = new([new Oid(Oids.ServerAuthentication)], false);

    private readonly CertificateAuthority _authority;
    private readonly CertificateKeyAlgorithm _keyAlgorithm;
    private readonly bool _keyPerHost;
    private readonly TimeProvider _timeProvider;
    private readonly Lazy<LeafKey> _sharedKey;
    private readonly X509AuthorityKeyIdentifierExtension _authorityKeyIdentifier;
    private readonly Lock _signLock = new();
    private int _forgeCount;

    public LeafCertificateForge(CertificateAuthority authority, CertificateKeyAlgorithm keyAlgorithm, bool keyPerHost, TimeProvider timeProvider)
    {
        _authority = authority;
        _keyAlgorithm = keyAlgorithm;
        _keyPerHost = keyPerHost;
        _timeProvider = timeProvider;
        _sharedKey = new Lazy<LeafKey>(() => LeafKey.Create(keyAlgorithm), LazyThreadSafetyMode.ExecutionAndPublication);

        // RFC 5280 §4.2.1.1: the AKI MUST be present in leaves and identifies the CA's key by its SKI; a CA brought
        // by the user without an SKI is identified by issuer name and serial instead.
        _authorityKeyIdentifier = authority.SubjectKeyIdentifier is { } ski
            ? X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(ski)
            : X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority.PublicCertificate, includeKeyIdentifier: false, includeIssuerAndSerial: true);
    }

    /// <summary>How many leaves this forge signed (for tests and metrics).</summary>
    public int ForgeCount => Volatile.Read(ref _forgeCount);

    public bool SharedKeyCreated => !_keyPerHost && _sharedKey.IsValueCreated;

    /// <summary>Generates the shared leaf key now, so the first forge does not pay for it.</summary>
    public void EnsureSharedKey()
    {
        if (!_keyPerHost)
        {
            _ = _sharedKey.Value;
        }
    }

    /// <summary>Signs a leaf for <paramref name="host"/>; the result carries its private key, ready for SslStream.</summary>
    /// <exception cref="CertificateException">The CA has expired, so no valid leaf can be made.</exception>
    public X509Certificate2 Forge(LeafHostName host)
    {
        var now = _timeProvider.GetUtcNow();

        // Never outside the CA's own validity: clients check every certificate in the chain.
        var notBefore = Max(now - NotBeforeBackdate, _authority.NotBefore);
        var notAfter = Min(now + Validity, _authority.NotAfter);
        if (notAfter <= now)
        {
            throw new CertificateException($"The CA {_authority.Certificate.Subject} expired on {_authority.NotAfter:yyyy-MM-dd}; create a new one (move the old files away and run: interpose ca init).");
        }

        var key = _keyPerHost ? LeafKey.Create(_keyAlgorithm) : _sharedKey.Value;
        try
        {
            var request = CreateRequest(host, key);
            X509Certificate2 unsigned;

            // NOTE: signing is serialised: crypto objects do not promise thread safety for concurrent use, and the
            // signature is a fraction of a forge (the context's chain build that follows runs in parallel).
            lock (_signLock)
            {
                unsigned = request.Create(_authority.Certificate.SubjectName, _authority.SignatureGenerator, notBefore, notAfter, CertificateSerial.Create());
            }

            using (unsigned)
            {
                var leaf = key.Key is RSA rsa ? unsigned.CopyWithPrivateKey(rsa) : unsigned.CopyWithPrivateKey((ECDsa)key.Key);
                if (OperatingSystem.IsWindows())
                {
                    // SChannel cannot use an ephemeral (never persisted) key; a PKCS#12 round trip gives it one it can.
                    var persisted = X509CertificateLoader.LoadPkcs12(leaf.Export(X509ContentType.Pkcs12), null);
                    leaf.Dispose();
                    leaf = persisted;
                }

                Interlocked.Increment(ref _forgeCount);
                return leaf;
            }
        }
        finally
        {
            if (_keyPerHost)
            {
                key.Key.Dispose();
            }
        }
    }

    /// <summary>Disposes the shared leaf key if it was made.</summary>
    public void Dispose()
    {
        if (_sharedKey.IsValueCreated)
        {
            _sharedKey.Value.Key.Dispose();
        }
    }

    private CertificateRequest CreateRequest(LeafHostName host, LeafKey key)
    {
        // RFC 6125 §6.4.4: clients match the SAN and ignore the CN when a SAN is present; the CN is for humans and
        // old tools. The CN holds the name asked for, exactly.
        var subjectBuilder = new X500DistinguishedNameBuilder();
        subjectBuilder.AddCommonName(host.Name);

        // Built from the prepared public key: exporting it from the key object again would cost more than the rest.
        var request = new CertificateRequest(subjectBuilder.Build(), key.PublicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(EndEntityConstraints);
        request.CertificateExtensions.Add(key.Usage);
        request.CertificateExtensions.Add(ServerAuthenticationUsage);

        // RFC 5280 §4.2.1.6: the name goes in the SAN as dNSName, or iPAddress for literals (RFC 6125 §6.2.1).
        var san = new SubjectAlternativeNameBuilder();
        if (host.Address is { } address)
        {
            san.AddIpAddress(address);
        }
        else
        {
            san.AddDnsName(host.Name);
        }

        request.CertificateExtensions.Add(san.Build(false));
        request.CertificateExtensions.Add(key.SubjectKeyIdentifier);
        request.CertificateExtensions.Add(_authorityKeyIdentifier);
        return request;
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    /// <summary>A leaf key pair and what every leaf carrying it shares: public key, key usage, subject key identifier.</summary>
    private sealed record LeafKey(AsymmetricAlgorithm Key, PublicKey PublicKey, X509KeyUsageExtension Usage, X509SubjectKeyIdentifierExtension SubjectKeyIdentifier)
    {
        public static LeafKey Create(CertificateKeyAlgorithm algorithm)
        {
            AsymmetricAlgorithm key = algorithm == CertificateKeyAlgorithm.Rsa3072
                ? RSA.Create(RootCertificateFactory.RsaKeySize)
                : ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var publicKey = key is RSA rsa ? new PublicKey(rsa) : new PublicKey((ECDsa)key);

            // RFC 5280 §4.2.1.3 and RFC 8446 §4.4.2.4: TLS 1.3 and ECDHE need digitalSignature; RSA key transport
            // (TLS 1.2 RSA suites) also needs keyEncipherment, which makes no sense for an ECDSA key. Critical.
            var usages = key is RSA
                ? X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment
                : X509KeyUsageFlags.DigitalSignature;

            // RFC 5280 §4.2.1.2: SHOULD be included in end entity certificates.
            return new LeafKey(key, publicKey, new X509KeyUsageExtension(usages, true), new X509SubjectKeyIdentifierExtension(publicKey, false));
        }
    }
}
