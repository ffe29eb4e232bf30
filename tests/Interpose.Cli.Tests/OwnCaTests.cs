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

    /// <summary>Writes a CA valid from <paramref name="notBefore"/> to <paramref name="notAfter"/> as PEM files.</summary>
    private (string Certificate, string Key) WriteCa(string name, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var certificate = request.CreateSelfSigned(notBefore, notAfter);
        File.WriteAllText(_temp.File(name + ".pem"), certificate.ExportCertificatePem());
        File.WriteAllText(_temp.File(name + ".key"), key.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(_temp.File(name + ".key"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (_temp.File(name + ".pem"), _temp.File(name + ".key"));
    }

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
    public async Task Run_refuses_an_expired_CA_in_one_line()
    {
        var now = TimeProvider.System.GetUtcNow();
        var (certificate, key) = WriteCa("expired", now.AddYears(-2), now.AddDays(-1));

        var run = await CliRun.RunAsync(Home, "run", "--listen", "127.0.0.1:0", "--ca-cert", certificate, "--ca-key", key);

        // It used to start, and then every interception failed as an internal error (event 199).
        Assert.True(run.ExitCode == 2, run.ToString());
        var line = Assert.Single(run.StderrLines);
        Assert.StartsWith("interpose: The CA CN=expired expired on ", line, StringComparison.Ordinal);
        Assert.Contains("give one that is still valid", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_warns_about_a_CA_that_expires_within_30_days()
    {
        var now = TimeProvider.System.GetUtcNow();
        var (certificate, key) = WriteCa("soon", now.AddYears(-1), now.AddDays(10).AddHours(1));

        using var run = CliRun.Start(Home, "run", "--listen", "127.0.0.1:0", "--ca-cert", certificate, "--ca-key", key);
        try
        {
            // Logs go to standard output; read until the warning (bounded: a missing warning fails, it does not hang).
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            string? line;
            do
            {
                line = await run.StandardOutput.ReadLineAsync(timeout.Token);
            }
            while (line is not null && !line.Contains("The CA CN=soon expires on ", StringComparison.Ordinal));

            Assert.NotNull(line);
            Assert.Contains("in 11 days", line, StringComparison.Ordinal);
        }
        finally
        {
            run.Kill();
            await run.WaitForExitAsync();
        }
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
