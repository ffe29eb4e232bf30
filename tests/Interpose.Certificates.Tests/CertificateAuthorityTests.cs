using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Interpose.Certificates.Tests;

public sealed class CertificateAuthorityTests : IDisposable
{
    private readonly TempDirectory _home = new();

    public void Dispose() => _home.Dispose();

    [Fact]
    public void New_ecdsa_CA_has_the_root_fields_RFC_5280_asks_for()
    {
        var time = new ManualTimeProvider(TimeProvider.System.GetUtcNow());
        using var ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path, TimeProvider = time });
        var certificate = ca.Certificate;

        Assert.True(certificate.HasPrivateKey);
        Assert.Equal(certificate.SubjectName.RawData, certificate.IssuerName.RawData);
        // In DER order (as openssl prints it): O first, then CN.
        var names = certificate.SubjectName.EnumerateRelativeDistinguishedNames(reversed: false).Select(n => (n.GetSingleElementType().Value, n.GetSingleElementValue())).ToArray();
        Assert.Equal(2, names.Length);
        Assert.Equal(("2.5.4.10", "Interpose"), names[0]);
        Assert.Equal("2.5.4.3", names[1].Value);
        Assert.Matches(@"^Interpose CA \(.+ [0-9a-f]{8}\)$", names[1].Item2);
        Assert.Matches(@"^CN=""?Interpose CA \(.+\)""?, O=Interpose$", certificate.Subject);

        var constraints = TestCertificates.Extension<X509BasicConstraintsExtension>(certificate);
        Assert.True(constraints.Critical);
        Assert.True(constraints.CertificateAuthority);
        Assert.True(constraints.HasPathLengthConstraint);
        Assert.Equal(0, constraints.PathLengthConstraint);

        var usage = TestCertificates.Extension<X509KeyUsageExtension>(certificate);
        Assert.True(usage.Critical);
        Assert.Equal(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, usage.KeyUsages);

        var ski = TestCertificates.Extension<X509SubjectKeyIdentifierExtension>(certificate);
        Assert.False(ski.Critical);
        Assert.Equal(20, ski.SubjectKeyIdentifierBytes.Length);

        var now = time.GetUtcNow();
        Assert.Equal(now.AddDays(-2).ToUnixTimeSeconds(), TestCertificates.Utc(certificate.NotBefore).ToUnixTimeSeconds());
        Assert.Equal(now.AddDays(3650).ToUnixTimeSeconds(), TestCertificates.Utc(certificate.NotAfter).ToUnixTimeSeconds());

        var serial = certificate.SerialNumberBytes.ToArray();
        Assert.Equal(16, serial.Length);
        Assert.InRange(serial[0], 1, 0x7F);

        Assert.Equal(TestCertificates.EcdsaWithSha256, certificate.SignatureAlgorithm.Value);
        using var key = certificate.GetECDsaPublicKey();
        Assert.NotNull(key);
        Assert.Equal(256, key.KeySize);
        Assert.Equal(TestCertificates.NistP256, key.ExportParameters(false).Curve.Oid.Value);
    }

    [Fact]
    public void New_rsa_CA_is_rsa_3072_signed_with_sha256()
    {
        using var ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path, KeyAlgorithm = CertificateKeyAlgorithm.Rsa3072 });

        Assert.Equal(TestCertificates.Sha256WithRsa, ca.Certificate.SignatureAlgorithm.Value);
        using var key = ca.Certificate.GetRSAPublicKey();
        Assert.NotNull(key);
        Assert.Equal(3072, key.KeySize);
        Assert.True(TestCertificates.Extension<X509BasicConstraintsExtension>(ca.Certificate).CertificateAuthority);
    }

    [Fact]
    public void Two_installs_get_different_CAs()
    {
        using var other = new TempDirectory();
        using var first = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path });
        using var second = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = other.Path });

        Assert.NotEqual(first.Sha256Fingerprint, second.Sha256Fingerprint);
        Assert.NotEqual(first.Certificate.Subject, second.Certificate.Subject);
    }

    [Fact]
    public void Files_are_pem_der_and_a_private_pkcs8_key_in_a_private_directory()
    {
        var home = Path.Combine(_home.Path, "nested", "interpose");
        using var ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = home });

        var pem = Path.Combine(home, "interpose-ca.pem");
        var der = Path.Combine(home, "interpose-ca.cer");
        var key = Path.Combine(home, "interpose-ca.key");
        Assert.Equal(pem, ca.CertificatePath);
        Assert.Equal(key, ca.KeyPath);
        Assert.Equal(der, ca.DerCertificatePath);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(home));
        Assert.Equal(ca.Certificate.RawData, File.ReadAllBytes(der));
        using (var fromPem = X509Certificate2.CreateFromPem(File.ReadAllText(pem)))
        {
            Assert.Equal(ca.Certificate.RawData, fromPem.RawData);
        }

        var keyText = File.ReadAllText(key);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", keyText, StringComparison.Ordinal);
        using var ecdsa = ECDsa.Create();
        ecdsa.ImportFromPem(keyText);
        using var publicKey = ca.Certificate.GetECDsaPublicKey()!;
        Assert.Equal(publicKey.ExportSubjectPublicKeyInfo(), ecdsa.ExportSubjectPublicKeyInfo());

        Assert.DoesNotContain(Directory.GetFiles(home), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public void Second_load_returns_the_same_CA_and_restores_a_missing_der_copy()
    {
        string fingerprint;
        using (var created = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path }))
        {
            Assert.True(created.Created);
            fingerprint = created.Sha256Fingerprint;
        }

        File.Delete(_home.File("interpose-ca.cer"));
        using var loaded = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path });

        Assert.False(loaded.Created);
        Assert.Equal(fingerprint, loaded.Sha256Fingerprint);
        Assert.True(loaded.Certificate.HasPrivateKey);
        Assert.Equal(loaded.Certificate.RawData, File.ReadAllBytes(_home.File("interpose-ca.cer")));
    }

    [Fact]
    public void Fingerprint_is_colon_separated_upper_case_sha256_like_openssl()
    {
        using var ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path });

        var expected = string.Join(':', Convert.ToHexString(SHA256.HashData(ca.Certificate.RawData)).Chunk(2).Select(c => new string(c)));
        Assert.Equal(expected, ca.Sha256Fingerprint);
        Assert.Equal(95, ca.Sha256Fingerprint.Length);
    }

    [Fact]
    public async Task Fingerprint_matches_what_openssl_prints()
    {
        using var ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path });

        var (exitCode, output) = await TestCertificates.OpenSslAsync("x509", "-in", ca.CertificatePath!, "-noout", "-fingerprint", "-sha256");

        Assert.Equal(0, exitCode);
        Assert.Contains(ca.Sha256Fingerprint, output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_readable_by_others_is_refused_with_the_chmod_to_run()
    {
        using (CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path }))
        {
        }

        var key = _home.File("interpose-ca.key");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var error = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path }));

        Assert.Contains($"chmod 600 {key}", error.Message, StringComparison.Ordinal);
        Assert.Contains("644", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void A_key_writable_by_group_is_refused_too()
    {
        var (certificate, key) = TestCertificates.SelfSigned("Own CA", isCa: true);
        using (certificate)
        using (key)
        {
            TestCertificates.WritePem(certificate, key, _home.File("ca.pem"), _home.File("ca.key"));
        }

        File.SetUnixFileMode(_home.File("ca.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupWrite);

        var error = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadPem(_home.File("ca.pem"), _home.File("ca.key")));
        Assert.Contains("chmod 600 ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_first_use_in_one_directory_creates_one_CA()
    {
        using var start = new ManualResetEventSlim();
        var loads = Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            start.Wait();
            using var ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path });
            return (Fingerprint: ca.Sha256Fingerprint, ca.Created);
        })).ToArray();
        start.Set();

        var results = await Task.WhenAll(loads);
        var fingerprints = results.Select(r => r.Fingerprint).ToArray();

        Assert.Single(fingerprints.Distinct());
        Assert.Single(results, r => r.Created);
        Assert.Single(Directory.GetFiles(_home.Path, "*.key"));
        using var onDisk = X509Certificate2.CreateFromPem(File.ReadAllText(_home.File("interpose-ca.pem")));
        Assert.Equal(fingerprints[0].Replace(":", string.Empty, StringComparison.Ordinal), onDisk.GetCertHashString(HashAlgorithmName.SHA256));
    }

    [Fact]
    public void A_key_without_its_certificate_is_never_overwritten()
    {
        File.WriteAllText(_home.File("interpose-ca.key"), "precious");

        var error = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path }));

        Assert.Contains("interpose-ca.pem", error.Message, StringComparison.Ordinal);
        Assert.Equal("precious", File.ReadAllText(_home.File("interpose-ca.key")));
    }

    [Fact]
    public void Without_create_if_missing_a_missing_CA_says_to_run_init()
    {
        var error = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path, CreateIfMissing = false }));

        Assert.Contains("interpose ca init", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_home.Path));
    }

    [Fact]
    public void Own_CA_in_pem_made_by_dotnet_loads_with_its_key()
    {
        var (certificate, key) = TestCertificates.SelfSigned("Own CA", isCa: true);
        using (certificate)
        using (key)
        {
            TestCertificates.WritePem(certificate, key, _home.File("ca.pem"), _home.File("ca.key"));
            using var ca = CertificateAuthority.LoadPem(_home.File("ca.pem"), _home.File("ca.key"));

            Assert.True(ca.Certificate.HasPrivateKey);
            Assert.Equal(certificate.RawData, ca.Certificate.RawData);
            Assert.Equal(_home.File("ca.pem"), ca.CertificatePath);
            Assert.Equal(_home.File("ca.key"), ca.KeyPath);
        }
    }

    [Fact]
    public async Task Own_rsa_CA_made_by_openssl_loads_and_signs_leaves()
    {
        var certificatePath = _home.File("openssl-ca.pem");
        var keyPath = _home.File("openssl-ca.key");
        var (exitCode, output) = await TestCertificates.OpenSslAsync(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certificatePath, "-days", "30", "-subj", "/CN=OpenSSL Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
        Assert.True(exitCode == 0, output);
        File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        using var ca = CertificateAuthority.LoadPem(certificatePath, keyPath);
        using var forge = new LeafCertificateForge(ca, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, TimeProvider.System);
        using var leaf = forge.Forge(LeafHostName.Parse("own-ca.example.test"));

        Assert.Equal(TestCertificates.Sha256WithRsa, leaf.SignatureAlgorithm.Value);
        Assert.Equal(ca.Certificate.SubjectName.RawData, leaf.IssuerName.RawData);
    }

    [Fact]
    public void Own_CA_in_pkcs12_loads_with_its_password_and_is_refused_without_it()
    {
        var (certificate, key) = TestCertificates.SelfSigned("Own P12 CA", isCa: true);
        using (certificate)
        using (key)
        {
            File.WriteAllBytes(_home.File("ca.p12"), certificate.ExportPkcs12(Pkcs12ExportPbeParameters.Pbes2Aes256Sha256, "s3cret"));
        }

        using (var ca = CertificateAuthority.LoadPkcs12(_home.File("ca.p12"), "s3cret"))
        {
            Assert.True(ca.Certificate.HasPrivateKey);
            Assert.Equal("CN=Own P12 CA", ca.Certificate.Subject);
            Assert.Equal(_home.File("ca.p12"), ca.CertificatePath);
            Assert.Null(ca.KeyPath);
        }

        var error = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadPkcs12(_home.File("ca.p12"), "wrong"));
        Assert.Contains("password", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_certificate_that_is_not_a_CA_is_refused()
    {
        var (certificate, key) = TestCertificates.SelfSigned("leaf.example.test", isCa: false);
        using (certificate)
        using (key)
        {
            TestCertificates.WritePem(certificate, key, _home.File("leaf.pem"), _home.File("leaf.key"));
        }

        var error = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadPem(_home.File("leaf.pem"), _home.File("leaf.key")));

        Assert.Contains("not a CA", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_CA_without_keyCertSign_usage_is_refused()
    {
        var (certificate, key) = TestCertificates.SelfSigned("No signing CA", isCa: true, withKeyCertSign: false);
        using (certificate)
        using (key)
        {
            TestCertificates.WritePem(certificate, key, _home.File("ca.pem"), _home.File("ca.key"));
        }

        var error = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadPem(_home.File("ca.pem"), _home.File("ca.key")));

        Assert.Contains("keyCertSign", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_that_does_not_match_the_certificate_is_refused()
    {
        var (certificate, key) = TestCertificates.SelfSigned("Own CA", isCa: true);
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using (certificate)
        using (key)
        {
            TestCertificates.WritePem(certificate, otherKey, _home.File("ca.pem"), _home.File("ca.key"));
        }

        var error = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadPem(_home.File("ca.pem"), _home.File("ca.key")));

        Assert.Contains("not a PEM key matching", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_and_malformed_files_are_one_line_certificate_errors()
    {
        var missing = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadPem(_home.File("absent.pem"), _home.File("absent.key")));
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);

        File.WriteAllText(_home.File("junk.pem"), "not a certificate");
        File.WriteAllText(_home.File("junk.key"), "not a key");
        File.SetUnixFileMode(_home.File("junk.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var junk = Assert.Throws<CertificateException>(() => CertificateAuthority.LoadPem(_home.File("junk.pem"), _home.File("junk.key")));
        Assert.Contains("not a PEM certificate", junk.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', junk.Message);
    }

    [Fact]
    public void Export_gives_the_certificate_and_the_key_only_when_asked()
    {
        using var ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path });

        Assert.Equal(ca.Certificate.RawData, ca.Export(CertificateExportFormat.Der, includeKey: false));
        Assert.Throws<ArgumentException>(() => ca.Export(CertificateExportFormat.Der, includeKey: true));

        var pem = Encoding.ASCII.GetString(ca.Export(CertificateExportFormat.Pem, includeKey: false));
        Assert.Contains("BEGIN CERTIFICATE", pem, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", pem, StringComparison.Ordinal);

        var pemWithKey = Encoding.ASCII.GetString(ca.Export(CertificateExportFormat.Pem, includeKey: true));
        using (var roundTrip = X509Certificate2.CreateFromPem(pemWithKey, pemWithKey))
        {
            Assert.True(roundTrip.HasPrivateKey);
            Assert.Equal(ca.Certificate.RawData, roundTrip.RawData);
        }

        using (var p12 = X509CertificateLoader.LoadPkcs12(ca.Export(CertificateExportFormat.Pkcs12, includeKey: true, "pw"), "pw"))
        {
            Assert.True(p12.HasPrivateKey);
            Assert.Equal(ca.Certificate.RawData, p12.RawData);
        }

        var certificateOnly = X509CertificateLoader.LoadPkcs12Collection(ca.Export(CertificateExportFormat.Pkcs12, includeKey: false, "pw"), "pw");
        var only = Assert.Single(certificateOnly);
        Assert.False(only.HasPrivateKey);
        Assert.Equal(ca.Certificate.RawData, only.RawData);
    }

    [Theory]
    [InlineData(CertificateExportFormat.Pem, true)]
    [InlineData(CertificateExportFormat.Pem, false)]
    [InlineData(CertificateExportFormat.Der, false)]
    public void Export_refuses_a_password_for_a_format_that_is_not_encrypted(CertificateExportFormat format, bool includeKey)
    {
        // A password PEM or DER cannot use would leave the key in clear while the caller believes it protected.
        using var ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path });

        var error = Assert.Throws<ArgumentException>(() => ca.Export(format, includeKey, "pw"));

        Assert.Equal("pkcs12Password", error.ParamName);
        Assert.Contains("PKCS#12 export only", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Creation_and_load_are_logged_at_information_with_fingerprint_and_path()
    {
        var logger = new CollectingLogger();
        string fingerprint;
        using (var created = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path }, logger))
        {
            fingerprint = created.Sha256Fingerprint;
        }

        using (CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path }, logger))
        {
        }

        var entries = logger.Entries.ToArray();
        Assert.Equal(2, entries.Length);
        Assert.All(entries, e => Assert.Equal(LogLevel.Information, e.Level));
        Assert.All(entries, e => Assert.Contains(fingerprint, e.Message, StringComparison.Ordinal));
        Assert.All(entries, e => Assert.Contains(_home.Path, e.Message, StringComparison.Ordinal));
        Assert.Equal([1000, 1001], entries.Select(e => e.EventId.Id));
    }

    [Fact]
    public void Home_prefers_INTERPOSE_HOME_then_XDG_CONFIG_HOME()
    {
        // Environment is process-wide; this test only reads back what it sets and restores it.
        var savedHome = Environment.GetEnvironmentVariable("INTERPOSE_HOME");
        var savedXdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        try
        {
            Environment.SetEnvironmentVariable("INTERPOSE_HOME", _home.Path);
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", "/xdg");
            Assert.Equal(_home.Path, InterposeHome.Resolve());

            Environment.SetEnvironmentVariable("INTERPOSE_HOME", null);
            Assert.Equal("/xdg/interpose", InterposeHome.Resolve());

            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", null);
            Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config", "interpose"), InterposeHome.Resolve());
        }
        finally
        {
            Environment.SetEnvironmentVariable("INTERPOSE_HOME", savedHome);
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", savedXdg);
        }
    }
}
