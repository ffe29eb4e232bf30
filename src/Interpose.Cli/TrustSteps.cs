using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text;

namespace Interpose.Cli;

/// <summary>How to make each kind of client trust the CA, the current OS first; and the Linux install of <c>ca trust --install</c>.</summary>
internal static class TrustSteps
{
    // Debian/Ubuntu: update-ca-certificates(8) picks up *.crt (PEM) files from this directory.
    internal const string DebianAnchorDirectory = "/usr/local/share/ca-certificates";

    // Fedora/RHEL: update-ca-trust(8) reads anchors from this directory.
    internal const string FedoraAnchorDirectory = "/etc/pki/ca-trust/source/anchors";

    internal const string AnchorFileName = "interpose.crt";

    /// <summary>The steps as text, one section per client family, the current OS's sections first.</summary>
    public static string Describe(string pemPath, string derPath)
    {
        var pem = Quote(pemPath);
        var der = Quote(derPath);
        var linux = new[]
        {
            ("curl (one command)", $"curl --proxy http://HOST:PORT --cacert {pem} https://example.com/"),
            ("Debian/Ubuntu system store", $"sudo cp {pem} {DebianAnchorDirectory}/{AnchorFileName} && sudo update-ca-certificates"),
            ("Fedora/RHEL system store", $"sudo trust anchor --store {pem}   (or: sudo cp {pem} {FedoraAnchorDirectory}/ && sudo update-ca-trust)"),
            ("Chromium/Chrome (NSS)", $"certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n interpose -i {pem}   (certutil is in libnss3-tools / nss-tools)"),
            ("Firefox", $"Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import {pem}, or certutil as above with -d sql:<profile directory>"),
            (".NET on Linux", $"uses the OpenSSL system store, so the Debian or Fedora step above is enough; for one process only: SSL_CERT_FILE={pem} (replaces the default bundle)"),
        };
        var mac = new[]
        {
            ("macOS", $"sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {pem}"),
        };
        var windows = new[]
        {
            ("Windows", $"certutil -addstore Root {der}   (as administrator; current user only: certutil -user -addstore Root {der})"),
        };
        var mobile = new[]
        {
            ("Android", $"copy {der} to the device, then Settings > Security > Encryption & credentials > Install a certificate > CA certificate. Apps targeting Android 7+ trust user CAs only if their network_security_config has <certificates src=\"user\"/>."),
            ("iOS", $"send {der} to the device and install the profile, then enable it in Settings > General > About > Certificate Trust Settings."),
        };

        var ordered = OperatingSystem.IsMacOS() ? [.. mac, .. linux, .. windows, .. mobile]
            : OperatingSystem.IsWindows() ? [.. windows, .. linux, .. mac, .. mobile]
            : (IEnumerable<(string Title, string Step)>)[.. linux, .. mac, .. windows, .. mobile];

        var text = new StringBuilder();
        text.Append("To intercept HTTPS, clients must trust the Interpose CA ").Append(pem).Append(":\n");
        foreach (var (title, step) in ordered)
        {
            text.Append('\n').Append(title).Append(":\n  ").Append(step).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>
    /// Installs the CA into the Linux system store (when root) and the user's NSS database (when certutil exists),
    /// reporting each step. Returns <see cref="CliExit.Success"/> only if every applicable step worked.
    /// </summary>
    [SupportedOSPlatform("linux")]
    public static async Task<int> InstallOnLinuxAsync(string pemPath, TextWriter report, CancellationToken cancellationToken)
    {
        var complete = true;
        complete &= await InstallSystemStoreAsync(pemPath, report, cancellationToken);
        complete &= await InstallNssAsync(pemPath, report, cancellationToken);
        return complete ? CliExit.Success : CliExit.Incomplete;
    }

    [SupportedOSPlatform("linux")]
    private static async Task<bool> InstallSystemStoreAsync(string pemPath, TextWriter report, CancellationToken cancellationToken)
    {
        var (directory, tool) = Directory.Exists(DebianAnchorDirectory) ? (DebianAnchorDirectory, "update-ca-certificates")
            : Directory.Exists(FedoraAnchorDirectory) ? (FedoraAnchorDirectory, "update-ca-trust")
            : (null, null);
        if (directory is null || tool is null)
        {
            await report.WriteLineAsync($"System store: skipped: neither {DebianAnchorDirectory} nor {FedoraAnchorDirectory} exists; see the steps above.");
            return false;
        }

        if (!Environment.IsPrivilegedProcess)
        {
            await report.WriteLineAsync($"System store: skipped: needs root; run: sudo cp {Quote(pemPath)} {directory}/{AnchorFileName} && sudo {tool}");
            return false;
        }

        var target = Path.Combine(directory, AnchorFileName);
        File.Copy(pemPath, target, overwrite: true);
        File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        await report.WriteLineAsync($"System store: copied the CA to {target}");
        var (exitCode, output) = await RunAsync(tool, [], cancellationToken);
        await report.WriteLineAsync(exitCode == 0 ? $"System store: ran {tool}" : $"System store: {tool} failed ({exitCode}): {output}");
        return exitCode == 0;
    }

    [SupportedOSPlatform("linux")]
    private static async Task<bool> InstallNssAsync(string pemPath, TextWriter report, CancellationToken cancellationToken)
    {
        if (FindOnPath("certutil") is null)
        {
            await report.WriteLineAsync("NSS (Chromium): skipped: certutil not found; install libnss3-tools (Debian/Ubuntu) or nss-tools (Fedora), then rerun.");
            return false;
        }

        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var nssdb = Path.Combine(home, ".pki", "nssdb");
        var database = "sql:" + nssdb;
        if (!File.Exists(Path.Combine(nssdb, "cert9.db")))
        {
            Directory.CreateDirectory(nssdb, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var (created, createOutput) = await RunAsync("certutil", ["-d", database, "-N", "--empty-password"], cancellationToken);
            if (created != 0)
            {
                await report.WriteLineAsync($"NSS (Chromium): could not create {nssdb} ({created}): {createOutput}");
                return false;
            }
        }

        var (exitCode, output) = await RunAsync("certutil", ["-d", database, "-A", "-t", "C,,", "-n", "interpose", "-i", pemPath], cancellationToken);
        await report.WriteLineAsync(exitCode == 0 ? $"NSS (Chromium): added the CA to {nssdb} as \"interpose\"" : $"NSS (Chromium): certutil failed ({exitCode}): {output}");
        return exitCode == 0;
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string program, string[] arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new IOException($"Could not start {program}.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, ((await stdout) + (await stderr)).ReplaceLineEndings(" ").Trim());
    }

    private static string? FindOnPath(string program)
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string Quote(string path) =>
        path.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or ',' or ':' or '@' or '%' or '\\')
            ? path
            : "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
