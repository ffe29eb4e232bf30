using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Cli.Tests;

public sealed class OwnCaTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly X509Certificate2 _certificate;
    private readonly string _expectedFingerprint;

    public OwnCaTests()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Own Test CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        var now = TimeProvider.System.GetUtcNow();
        _certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(1));
        File.WriteAllText(_temp.File("own.pem"), _certificate.ExportCertificatePem());
        File.WriteAllText(_temp.File("own.key"), key.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(_temp.File("own.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllBytes(_temp.File("own.p12"), _certificate.ExportPkcs12(Pkcs12ExportPbeParameters.Pbes2Aes256Sha256, "pw"));
        _expectedFingerprint = string.Join(':', Convert.ToHexString(SHA256.HashData(_certificate.RawData)).Chunk(2).Select(c => new string(c)));
    }

    public void Dispose()
    {
        _certificate.Dispose();
        _temp.Dispose();
    }

    private string Home => _temp.File("home");

    [Fact]
    public async Task Show_uses_own_pem_CA()
    {
        var show = await CliRun.RunAsync(Home, "ca", "show", "--ca-cert", _temp.File("own.pem"), "--ca-key", _temp.File("own.key"));

        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Equal(_expectedFingerprint, show.Fingerprint());
        Assert.Contains("CN=Own Test CA", show.Stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Home));
    }

    [Fact]
    public async Task Show_uses_own_pkcs12_CA_with_the_password_from_the_environment()
    {
        var show = await CliRun.RunWithEnvironmentAsync(
            Home, new Dictionary<string, string> { ["INTERPOSE_CA_PASSWORD"] = "pw" }, "ca", "show", "--ca-p12", _temp.File("own.p12"));

        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Equal(_expectedFingerprint, show.Fingerprint());
    }

    [Fact]
    public async Task Export_der_of_own_CA_is_its_certificate()
    {
        var output = _temp.File("out.cer");

        var export = await CliRun.RunAsync(Home, "ca", "export", "--format", "der", "--out", output, "--ca-cert", _temp.File("own.pem"), "--ca-key", _temp.File("own.key"));

        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Equal(_certificate.RawData, File.ReadAllBytes(output));
    }

    public static TheoryData<string[], string> Refusals() => new()
    {
        { ["--ca-cert", "missing.pem", "--ca-key", "missing.key"], "does not exist" },
        { ["--ca-cert", "missing.pem"], "go together" },
        { ["--ca-p12", "missing.p12"], "does not exist" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Wrong_own_CA_options_are_one_line_errors(string[] options, string expected)
    {
        var result = await CliRun.RunAsync(Home, ["ca", "show", .. options]);

        Assert.True(result.ExitCode == 2, result.ToString());
        var line = Assert.Single(result.StderrLines);
        Assert.StartsWith("interpose: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_pkcs12_password_is_a_one_line_error()
    {
        var result = await CliRun.RunWithEnvironmentAsync(
            Home, new Dictionary<string, string> { ["INTERPOSE_CA_PASSWORD"] = "nope" }, "ca", "show", "--ca-p12", _temp.File("own.p12"));

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("password", Assert.Single(result.StderrLines), StringComparison.Ordinal);
    }
}
