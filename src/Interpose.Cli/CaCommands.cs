using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Interpose.Certificates;

namespace Interpose.Cli;

/// <summary>
/// <c>interpose ca init|show|export|trust</c>: create, inspect, export and trust the install's certificate authority.
/// Thin: each command is a call into <see cref="CertificateAuthority"/> plus printing.
/// </summary>
internal static class CaCommands
{
    /// <summary>Builds the <c>ca</c> command and its subcommands.</summary>
    public static Command Create()
    {
        var ca = new Command("ca", "Manage the certificate authority that signs intercepted connections' certificates.");
        ca.Subcommands.Add(CreateInit());
        ca.Subcommands.Add(CreateShow());
        ca.Subcommands.Add(CreateExport());
        ca.Subcommands.Add(CreateTrust());
        return ca;
    }

    private static Command CreateInit()
    {
        var keyAlgorithm = new Option<string>("--key-algorithm")
        {
            Description = "Key of a new CA: ecdsa-p256 (default) or rsa-3072. An existing CA is kept.",
            DefaultValueFactory = _ => "ecdsa-p256",
        };
        keyAlgorithm.AcceptOnlyFromAmong("ecdsa-p256", "rsa-3072");

        var command = new Command("init", "Create the CA if it does not exist yet; print where it is and its fingerprint.");
        command.Options.Add(keyAlgorithm);
        SetGuardedAction(command, result =>
        {
            var options = new CertificateAuthorityOptions
            {
                Directory = CliOptions.ResolveHome(result),
                KeyAlgorithm = result.GetValue(keyAlgorithm) == "rsa-3072" ? CertificateKeyAlgorithm.Rsa3072 : CertificateKeyAlgorithm.EcdsaP256,
            };
            using var authority = CertificateAuthority.LoadOrCreate(options);
            Console.Out.WriteLine(authority.Created ? "Created a new CA." : "The CA already exists.");
            WriteSummary(authority);
            Console.Out.WriteLine();
            Console.Out.WriteLine("Next: make your clients trust it; run: interpose ca trust");
            return CliExit.Success;
        });
        return command;
    }

    private static Command CreateShow()
    {
        var command = new Command("show", "Print the CA's subject, SHA-256 fingerprint, validity and file paths.");
        CaSourceOptions.AddTo(command);
        SetGuardedAction(command, result =>
        {
            using var authority = CaSourceOptions.Load(result);
            WriteSummary(authority);
            return CliExit.Success;
        });
        return command;
    }

    private static Command CreateExport()
    {
        var format = new Option<string>("--format")
        {
            Description = "pem (default), der (certificate only) or p12.",
            DefaultValueFactory = _ => "pem",
        };
        format.AcceptOnlyFromAmong("pem", "der", "p12");
        var output = new Option<string?>("--out") { Description = "File to write (default: standard output).", HelpName = "FILE" };
        var includeKey = new Option<bool>("--include-key") { Description = "Also export the CA private key (PEM or p12). Anyone holding it can intercept your TLS traffic." };
        var password = new Option<string?>("--password") { Description = "Password protecting a p12 file (refused with pem and der, which are not encrypted)." };

        var command = new Command("export", "Write the CA certificate (and, only when asked, its private key).");
        command.Options.Add(format);
        command.Options.Add(output);
        command.Options.Add(includeKey);
        command.Options.Add(password);
        CaSourceOptions.AddTo(command);
        SetGuardedAction(command, result =>
        {
            var exportFormat = result.GetValue(format) switch
            {
                "der" => CertificateExportFormat.Der,
                "p12" => CertificateExportFormat.Pkcs12,
                _ => CertificateExportFormat.Pem,
            };
            var withKey = result.GetValue(includeKey);
            var path = result.GetValue(output);
            if (result.GetValue(password) is not null && exportFormat != CertificateExportFormat.Pkcs12)
            {
                // Only PKCS#12 is encrypted: a PEM key would be written in clear while the user believes it protected.
                return CliErrors.Report("--password protects a p12 file only: pem and der are written unencrypted; use --format p12, or leave --password out.");
            }

            if (withKey && exportFormat == CertificateExportFormat.Der)
            {
                return CliErrors.Report("DER holds the certificate only; use --format pem or --format p12 with --include-key.");
            }

            if (path is null && exportFormat != CertificateExportFormat.Pem && !Console.IsOutputRedirected)
            {
                return CliErrors.Report($"{result.GetValue(format)} is binary; write it to a file with --out FILE, or redirect standard output.");
            }

            using var authority = CaSourceOptions.Load(result);
            var bytes = authority.Export(exportFormat, withKey, result.GetValue(password));
            try
            {
                if (withKey)
                {
                    Console.Error.WriteLine("interpose: warning: the export contains the CA private key; anyone holding it can intercept your TLS traffic. Keep it secret.");
                }

                if (path is null)
                {
                    using var stdout = Console.OpenStandardOutput();
                    stdout.Write(bytes);
                }
                else
                {
                    ExportFile.Write(Path.GetFullPath(path), bytes, secret: withKey);
                    Console.Error.WriteLine($"Wrote {(withKey ? "certificate and private key" : "certificate")} ({result.GetValue(format)}) to {Path.GetFullPath(path)}");
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(bytes);
            }

            return CliExit.Success;
        });
        return command;
    }

    private static Command CreateTrust()
    {
        var install = new Option<bool>("--install")
        {
            Description = "On Linux: install into the system store (needs root) and into ~/.pki/nssdb when certutil exists, then report what was done.",
        };
        var command = new Command("trust", "Print the steps that make curl, browsers, .NET, macOS, Windows and Android trust the CA.");
        command.Options.Add(install);
        command.SetAction(async (result, cancellationToken) =>
        {
            try
            {
                using var authority = LoadExisting(result);
                var pem = authority.CertificatePath!;
                var der = authority.DerCertificatePath ?? pem;
                Console.Out.Write(TrustSteps.Describe(pem, der));
                if (!result.GetValue(install))
                {
                    return CliExit.Success;
                }

                if (!OperatingSystem.IsLinux())
                {
                    return CliErrors.Report("--install is supported on Linux only; follow the steps above.");
                }

                Console.Out.WriteLine();
                return await TrustSteps.InstallOnLinuxAsync(pem, Console.Out, cancellationToken);
            }
            catch (Exception ex) when (CliErrors.IsUserError(ex))
            {
                return CliErrors.Report(ex.Message);
            }
        });
        return command;
    }

    private static CertificateAuthority LoadExisting(ParseResult result) =>
        CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = CliOptions.ResolveHome(result), CreateIfMissing = false });

    private static void WriteSummary(CertificateAuthority authority)
    {
        var certificate = authority.Certificate;
        string key;
        using (var ecdsa = certificate.GetECDsaPublicKey())
        using (var rsa = certificate.GetRSAPublicKey())
        {
            key = ecdsa is not null ? $"ECDSA P-{ecdsa.KeySize}" : $"RSA {rsa?.KeySize}";
        }

        var lines = new[]
        {
            ("Subject", certificate.Subject),
            ("SHA-256 fingerprint", authority.Sha256Fingerprint),
            ("Key", key),
            ("Valid from", Utc(certificate.NotBefore)),
            ("Valid until", Utc(certificate.NotAfter)),
            ("Certificate", authority.CertificatePath ?? "-"),
            ("Certificate (DER)", authority.DerCertificatePath ?? "-"),
            ("Private key", authority.KeyPath ?? "-"),
        };
        foreach (var (label, value) in lines.Where(l => l.Item2 != "-"))
        {
            Console.Out.WriteLine($"{label + ":",-21}{value}");
        }
    }

    private static string Utc(DateTime local) => local.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>Runs a synchronous action, turning user errors into one line on stderr and exit code 2.</summary>
    private static void SetGuardedAction(Command command, Func<ParseResult, int> action) =>
        command.SetAction(result =>
        {
            try
            {
                return action(result);
            }
            catch (Exception ex) when (CliErrors.IsUserError(ex))
            {
                return CliErrors.Report(ex.Message);
            }
        });
}
