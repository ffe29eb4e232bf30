using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Cli.Tests;

public sealed class CaCommandsTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    private string Home => _temp.File("home");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Init_then_show_print_the_fingerprint_of_the_stored_CA()
    {
        var init = await CliRun.RunAsync(Home, "ca", "init");
        Assert.True(init.ExitCode == 0, init.ToString());
        Assert.Contains("Created a new CA.", init.Stdout, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(Home, "interpose-ca.pem"), init.Stdout, StringComparison.Ordinal);
        Assert.Equal(string.Empty, init.Stderr);

        var show = await CliRun.RunAsync(Home, "ca", "show");
        Assert.True(show.ExitCode == 0, show.ToString());

        var expected = OpenSslStyle(SHA256.HashData(File.ReadAllBytes(Path.Combine(Home, "interpose-ca.cer"))));
        Assert.Equal(expected, init.Fingerprint());
        Assert.Equal(expected, show.Fingerprint());
        Assert.Contains("Valid until:", show.Stdout, StringComparison.Ordinal);
        Assert.Contains("ECDSA P-256", show.Stdout, StringComparison.Ordinal);

        var again = await CliRun.RunAsync(Home, "ca", "init");
        Assert.Contains("The CA already exists.", again.Stdout, StringComparison.Ordinal);
        Assert.Equal(expected, again.Fingerprint());
    }

    [Fact]
    public async Task Init_can_create_an_rsa_CA()
    {
        var init = await CliRun.RunAsync(Home, "ca", "init", "--key-algorithm", "rsa-3072");

        Assert.True(init.ExitCode == 0, init.ToString());
        Assert.Contains("RSA 3072", init.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_home_option_overrides_INTERPOSE_HOME()
    {
        var other = _temp.File("other");

        var init = await CliRun.RunAsync(Home, "--home", other, "ca", "init");

        Assert.True(init.ExitCode == 0, init.ToString());
        Assert.True(File.Exists(Path.Combine(other, "interpose-ca.pem")));
        Assert.False(Directory.Exists(Home));
    }

    [Fact]
    public async Task Export_der_to_a_file_writes_the_stored_certificate()
    {
        await CliRun.RunAsync(Home, "ca", "init");
        var output = _temp.File("ca.cer");

        var export = await CliRun.RunAsync(Home, "ca", "export", "--format", "der", "--out", output);

        Assert.True(export.ExitCode == 0, export.ToString());
        var stored = File.ReadAllBytes(Path.Combine(Home, "interpose-ca.cer"));
        Assert.Equal(stored, File.ReadAllBytes(output));
        using var fromPem = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(Home, "interpose-ca.pem")));
        Assert.Equal(fromPem.RawData, stored);
    }

    [Fact]
    public async Task Export_pem_to_stdout_has_no_key_unless_asked_and_then_warns_and_writes_0600()
    {
        await CliRun.RunAsync(Home, "ca", "init");

        var certificateOnly = await CliRun.RunAsync(Home, "ca", "export");
        Assert.True(certificateOnly.ExitCode == 0, certificateOnly.ToString());
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", certificateOnly.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", certificateOnly.Stdout, StringComparison.Ordinal);
        Assert.Equal(string.Empty, certificateOnly.Stderr);

        var output = _temp.File("with-key.pem");
        File.WriteAllText(output, "old");
        File.SetUnixFileMode(output, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        var withKey = await CliRun.RunAsync(Home, "ca", "export", "--include-key", "--out", output);

        Assert.True(withKey.ExitCode == 0, withKey.ToString());
        Assert.Contains(withKey.StderrLines, l => l.Contains("warning", StringComparison.Ordinal) && l.Contains("private key", StringComparison.Ordinal));
        var text = File.ReadAllText(output);
        Assert.Contains("-----BEGIN PRIVATE KEY-----", text, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(output));
        using var roundTrip = X509Certificate2.CreateFromPem(text, text);
        Assert.True(roundTrip.HasPrivateKey);
    }

    [Fact]
    public async Task Export_p12_with_key_loads_back_with_its_password()
    {
        await CliRun.RunAsync(Home, "ca", "init");
        var output = _temp.File("ca.p12");

        var export = await CliRun.RunAsync(Home, "ca", "export", "--format", "p12", "--include-key", "--password", "pw", "--out", output);

        Assert.True(export.ExitCode == 0, export.ToString());
        using var loaded = X509CertificateLoader.LoadPkcs12FromFile(output, "pw");
        Assert.True(loaded.HasPrivateKey);
        Assert.Equal(File.ReadAllBytes(Path.Combine(Home, "interpose-ca.cer")), loaded.RawData);
    }

    [Theory]
    [InlineData("pem", "--include-key")]
    [InlineData("pem", null)]
    [InlineData("der", null)]
    public async Task A_password_with_a_format_that_is_not_encrypted_is_refused_and_nothing_is_written(string format, string? includeKey)
    {
        await CliRun.RunAsync(Home, "ca", "init");
        var output = _temp.File("ca." + format);
        string[] arguments = ["ca", "export", "--format", format, "--password", "pw", "--out", output];

        var export = await CliRun.RunAsync(Home, includeKey is null ? arguments : [.. arguments, includeKey]);

        // The password used to be ignored: the key was written in clear while the user took it for protected.
        AssertOneLineError(export);
        Assert.Contains("--password protects a p12 file only", export.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task Two_processes_racing_init_end_with_one_CA()
    {
        using var first = CliRun.Start(Home, "ca", "init");
        using var second = CliRun.Start(Home, "ca", "init");
        var results = await Task.WhenAll(CliRun.FinishAsync(first), CliRun.FinishAsync(second));

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.ToString()));
        Assert.Equal(results[0].Fingerprint(), results[1].Fingerprint());
        Assert.Single(results, r => r.Stdout.Contains("Created a new CA.", StringComparison.Ordinal));
        Assert.Single(Directory.GetFiles(Home, "*.key"));
        Assert.Empty(Directory.GetFiles(Home, "*.tmp"));
        Assert.Equal(OpenSslStyle(SHA256.HashData(File.ReadAllBytes(Path.Combine(Home, "interpose-ca.cer")))), results[0].Fingerprint());
    }

    [Fact]
    public async Task Trust_prints_the_steps_for_this_os_with_the_CA_path()
    {
        await CliRun.RunAsync(Home, "ca", "init");

        var trust = await CliRun.RunAsync(Home, "ca", "trust");

        Assert.True(trust.ExitCode == 0, trust.ToString());
        var pem = Path.Combine(Home, "interpose-ca.pem");
        Assert.Contains($"--cacert {pem}", trust.Stdout, StringComparison.Ordinal);
        Assert.Contains("/usr/local/share/ca-certificates/interpose.crt && sudo update-ca-certificates", trust.Stdout, StringComparison.Ordinal);
        Assert.Contains("trust anchor", trust.Stdout, StringComparison.Ordinal);
        Assert.Contains($"certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n interpose -i {pem}", trust.Stdout, StringComparison.Ordinal);
        Assert.Contains("SSL_CERT_FILE", trust.Stdout, StringComparison.Ordinal);
        Assert.Contains("security add-trusted-cert", trust.Stdout, StringComparison.Ordinal);
        Assert.Contains($"certutil -addstore Root {Path.Combine(Home, "interpose-ca.cer")}", trust.Stdout, StringComparison.Ordinal);
        Assert.Contains("network_security_config", trust.Stdout, StringComparison.Ordinal);
        if (OperatingSystem.IsLinux())
        {
            Assert.True(trust.Stdout.IndexOf("Debian", StringComparison.Ordinal) < trust.Stdout.IndexOf("macOS", StringComparison.Ordinal));
        }
    }

    public static TheoryData<string[]> UsageErrors() => new()
    {
        new[] { "ca", "export", "--format", "bogus" },
        new[] { "ca", "export", "--format", "der", "--include-key", "--out", "never-written.der" },
        new[] { "ca", "frobnicate" },
        new[] { "ca", "init", "--key-algorithm", "dsa" },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public async Task Usage_errors_are_one_line_on_stderr_and_exit_2(string[] arguments)
    {
        await CliRun.RunAsync(Home, "ca", "init");

        var result = await CliRun.RunAsync(Home, arguments);

        AssertOneLineError(result);
        Assert.False(File.Exists(Path.Combine(Environment.CurrentDirectory, "never-written.der")));
    }

    [Fact]
    public async Task A_key_readable_by_others_is_one_line_with_the_chmod_to_run()
    {
        await CliRun.RunAsync(Home, "ca", "init");
        var key = Path.Combine(Home, "interpose-ca.key");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var result = await CliRun.RunAsync(Home, "ca", "show");

        AssertOneLineError(result);
        Assert.Contains($"chmod 600 {key}", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Show_without_a_CA_says_to_run_init_and_creates_nothing()
    {
        var result = await CliRun.RunAsync(Home, "ca", "show");

        AssertOneLineError(result);
        Assert.Contains("interpose ca init", result.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Home));
    }

    [Fact]
    public async Task A_home_that_is_a_file_is_one_line_not_a_stack_trace()
    {
        var file = _temp.File("not-a-directory");
        File.WriteAllText(file, "x");

        var result = await CliRun.RunAsync(file, "ca", "init");

        AssertOneLineError(result);
    }

    private static void AssertOneLineError(CliResult result)
    {
        Assert.True(result.ExitCode == 2, result.ToString());
        var line = Assert.Single(result.StderrLines);
        Assert.StartsWith("interpose: ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", result.Stderr, StringComparison.Ordinal);
    }

    private static string OpenSslStyle(byte[] hash) => string.Join(':', Convert.ToHexString(hash).Chunk(2).Select(c => new string(c)));
}
