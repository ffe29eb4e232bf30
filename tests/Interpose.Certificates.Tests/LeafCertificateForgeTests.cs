using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Certificates.Tests;

public sealed class LeafCertificateForgeTests : IDisposable
{
    private readonly TempDirectory _home = new();
    private readonly ManualTimeProvider _time = new(TimeProvider.System.GetUtcNow());
    private readonly CertificateAuthority _ca;

    public LeafCertificateForgeTests()
    {
        _ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path, TimeProvider = _time });
    }

    public void Dispose()
    {
        _ca.Dispose();
        _home.Dispose();
    }

    [Fact]
    public void Dns_leaf_has_the_end_entity_fields()
    {
        using var forge = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, _time);
        using var leaf = forge.Forge(LeafHostName.Parse("WWW.Example.test"));

        Assert.True(leaf.HasPrivateKey);
        Assert.Equal("CN=www.example.test", leaf.Subject);
        Assert.Equal(_ca.Certificate.SubjectName.RawData, leaf.IssuerName.RawData);

        var constraints = TestCertificates.Extension<X509BasicConstraintsExtension>(leaf);
        Assert.True(constraints.Critical);
        Assert.False(constraints.CertificateAuthority);
        Assert.False(constraints.HasPathLengthConstraint);

        var usage = TestCertificates.Extension<X509KeyUsageExtension>(leaf);
        Assert.True(usage.Critical);
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, usage.KeyUsages);

        var eku = TestCertificates.Extension<X509EnhancedKeyUsageExtension>(leaf);
        Assert.False(eku.Critical);
        Assert.Equal(TestCertificates.ServerAuth, Assert.Single(eku.EnhancedKeyUsages.Cast<Oid>()).Value);

        var san = TestCertificates.Extension<X509SubjectAlternativeNameExtension>(leaf);
        Assert.False(san.Critical);
        Assert.Equal(["www.example.test"], san.EnumerateDnsNames());
        Assert.Empty(san.EnumerateIPAddresses());

        var caSki = TestCertificates.Extension<X509SubjectKeyIdentifierExtension>(_ca.Certificate).SubjectKeyIdentifierBytes.ToArray();
        var aki = TestCertificates.Extension<X509AuthorityKeyIdentifierExtension>(leaf);
        Assert.False(aki.Critical);
        Assert.Equal(caSki, aki.KeyIdentifier!.Value.ToArray());
        var ski = TestCertificates.Extension<X509SubjectKeyIdentifierExtension>(leaf);
        Assert.NotEqual(caSki, ski.SubjectKeyIdentifierBytes.ToArray());

        Assert.Equal(TestCertificates.EcdsaWithSha256, leaf.SignatureAlgorithm.Value);
        using var key = leaf.GetECDsaPublicKey();
        Assert.NotNull(key);
        Assert.Equal(256, key.KeySize);
        Assert.Equal(TestCertificates.NistP256, key.ExportParameters(false).Curve.Oid.Value);
    }

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("::1", "::1")]
    [InlineData("[::1]", "::1")]
    [InlineData("[2001:DB8:0:0::1]", "2001:db8::1")]
    public void Ip_literal_leaf_has_an_iPAddress_SAN_and_no_dNSName(string asked, string expected)
    {
        using var forge = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, _time);
        using var leaf = forge.Forge(LeafHostName.Parse(asked));

        var san = TestCertificates.Extension<X509SubjectAlternativeNameExtension>(leaf);
        Assert.Equal([IPAddress.Parse(expected)], san.EnumerateIPAddresses());
        Assert.Empty(san.EnumerateDnsNames());
        Assert.Equal($"CN={expected}", leaf.Subject);
    }

    [Fact]
    public void Validity_is_back_dated_two_days_and_lasts_365_days_under_the_397_day_browser_limit()
    {
        using var forge = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, _time);
        _time.Advance(TimeSpan.FromDays(10));
        var now = _time.GetUtcNow();
        using var leaf = forge.Forge(LeafHostName.Parse("dates.example.test"));

        var notBefore = TestCertificates.Utc(leaf.NotBefore);
        var notAfter = TestCertificates.Utc(leaf.NotAfter);
        Assert.Equal(now.AddDays(-2).ToUnixTimeSeconds(), notBefore.ToUnixTimeSeconds());
        Assert.Equal(now.AddDays(365).ToUnixTimeSeconds(), notAfter.ToUnixTimeSeconds());
        Assert.True(notAfter - notBefore <= TimeSpan.FromDays(397));
        Assert.True(notBefore >= TestCertificates.Utc(_ca.Certificate.NotBefore));
        Assert.True(notAfter <= TestCertificates.Utc(_ca.Certificate.NotAfter));
    }

    [Fact]
    public void Validity_never_extends_past_the_CA_and_an_expired_CA_forges_nothing()
    {
        using var forge = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, _time);
        var caNotAfter = TestCertificates.Utc(_ca.Certificate.NotAfter);

        _time.Set(caNotAfter.AddDays(-100));
        using (var leaf = forge.Forge(LeafHostName.Parse("late.example.test")))
        {
            Assert.Equal(caNotAfter, TestCertificates.Utc(leaf.NotAfter));
        }

        _time.Set(caNotAfter.AddDays(1));
        var error = Assert.Throws<CertificateException>(() => forge.Forge(LeafHostName.Parse("late.example.test")));
        Assert.Contains("expired", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Serials_are_16_positive_bytes_and_distinct()
    {
        using var forge = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, _time);
        var serials = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 50; i++)
        {
            using var leaf = forge.Forge(LeafHostName.Parse("serial.example.test"));
            var serial = leaf.SerialNumberBytes.ToArray();
            Assert.Equal(16, serial.Length);
            Assert.InRange(serial[0], 1, 0x7F);
            Assert.True(serials.Add(Convert.ToHexString(serial)));
        }

        Assert.Equal(50, forge.ForgeCount);
    }

    [Fact]
    public void One_key_is_shared_by_default_and_a_key_per_host_on_request()
    {
        using var shared = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, _time);
        using var a = shared.Forge(LeafHostName.Parse("a.example.test"));
        using var b = shared.Forge(LeafHostName.Parse("b.example.test"));
        Assert.Equal(a.PublicKey.EncodedKeyValue.RawData, b.PublicKey.EncodedKeyValue.RawData);

        using var perHost = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: true, _time);
        using var c = perHost.Forge(LeafHostName.Parse("a.example.test"));
        using var d = perHost.Forge(LeafHostName.Parse("a.example.test"));
        Assert.NotEqual(c.PublicKey.EncodedKeyValue.RawData, d.PublicKey.EncodedKeyValue.RawData);
        Assert.True(d.HasPrivateKey);
    }

    [Fact]
    public void Rsa_leaf_adds_keyEncipherment_and_an_rsa_CA_signs_with_sha256_rsa()
    {
        using var rsaHome = new TempDirectory();
        using var rsaCa = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = rsaHome.Path, KeyAlgorithm = CertificateKeyAlgorithm.Rsa3072 });
        using var forge = new LeafCertificateForge(rsaCa, CertificateKeyAlgorithm.Rsa3072, keyPerHost: false, TimeProvider.System);
        using var leaf = forge.Forge(LeafHostName.Parse("rsa.example.test"));

        var usage = TestCertificates.Extension<X509KeyUsageExtension>(leaf);
        Assert.True(usage.Critical);
        Assert.Equal(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, usage.KeyUsages);
        Assert.Equal(TestCertificates.Sha256WithRsa, leaf.SignatureAlgorithm.Value);
        using var key = leaf.GetRSAPublicKey();
        Assert.NotNull(key);
        Assert.Equal(3072, key.KeySize);
        Assert.True(Chains(leaf, rsaCa.Certificate));
    }

    [Fact]
    public void Leaf_chains_to_the_CA_with_X509Chain_and_custom_root_trust()
    {
        using var forge = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, TimeProvider.System);
        using var leaf = forge.Forge(LeafHostName.Parse("chain.example.test"));

        Assert.True(Chains(leaf, _ca.Certificate));

        using var stranger = new TempDirectory();
        using var otherCa = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = stranger.Path });
        Assert.False(Chains(leaf, otherCa.Certificate));
    }

    [Theory]
    [InlineData("www.example.test", "-verify_hostname", "www.example.test")]
    [InlineData("192.0.2.7", "-verify_ip", "192.0.2.7")]
    [InlineData("[2001:db8::7]", "-verify_ip", "2001:db8::7")]
    public async Task Openssl_verify_accepts_a_forged_leaf_strictly(string host, string check, string expected)
    {
        using var forge = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, TimeProvider.System);
        using var leaf = forge.Forge(LeafHostName.Parse(host));
        File.WriteAllText(_home.File("leaf.pem"), leaf.ExportCertificatePem());

        var (exitCode, output) = await TestCertificates.OpenSslAsync(
            "verify", "-x509_strict", "-purpose", "sslserver", check, expected, "-CAfile", _ca.CertificatePath!, _home.File("leaf.pem"));

        Assert.True(exitCode == 0, output);
        Assert.Contains("leaf.pem: OK", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Openssl_verify_rejects_a_leaf_for_another_name()
    {
        using var forge = new LeafCertificateForge(_ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, TimeProvider.System);
        using var leaf = forge.Forge(LeafHostName.Parse("one.example.test"));
        File.WriteAllText(_home.File("leaf.pem"), leaf.ExportCertificatePem());

        var (exitCode, _) = await TestCertificates.OpenSslAsync(
            "verify", "-verify_hostname", "two.example.test", "-CAfile", _ca.CertificatePath!, _home.File("leaf.pem"));

        Assert.NotEqual(0, exitCode);
    }

    private static bool Chains(X509Certificate2 leaf, X509Certificate2 root)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(TestCertificates.ServerAuth));
        var built = chain.Build(leaf);
        return built && chain.ChainElements.Count == 2 && chain.ChainElements[1].Certificate.RawData.AsSpan().SequenceEqual(root.RawData);
    }
}
