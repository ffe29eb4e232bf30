using System.CommandLine;
using Interpose.Certificates;
using Microsoft.Extensions.Logging;

namespace Interpose.Cli;

/// <summary>
/// Where a command gets its CA: the install's (default), or the user's own as <c>--ca-cert</c> + <c>--ca-key</c> PEM files
/// or a <c>--ca-p12</c> file whose password is in <c>$INTERPOSE_CA_PASSWORD</c>. Shared so <c>run</c> can offer the same.
/// </summary>
internal static class CaSourceOptions
{
    /// <summary>The environment variable holding the <c>--ca-p12</c> password (an option would show it in the process list).</summary>
    public const string PasswordVariable = "INTERPOSE_CA_PASSWORD";

    /// <summary><c>--ca-cert FILE</c>: the user's CA certificate in PEM.</summary>
    public static Option<string?> Certificate { get; } = new("--ca-cert")
    {
        Description = "Use your own CA certificate (PEM) instead of the install's; with --ca-key.",
        HelpName = "FILE",
    };

    /// <summary><c>--ca-key FILE</c>: the private key of <see cref="Certificate"/>, PEM, mode 0600.</summary>
    public static Option<string?> Key { get; } = new("--ca-key")
    {
        Description = "The private key (PEM, mode 0600) of --ca-cert.",
        HelpName = "FILE",
    };

    /// <summary><c>--ca-p12 FILE</c>: the user's CA certificate and key in PKCS#12.</summary>
    public static Option<string?> Pkcs12 { get; } = new("--ca-p12")
    {
        Description = $"Use your own CA from a PKCS#12 file; its password is read from ${PasswordVariable}.",
        HelpName = "FILE",
    };

    /// <summary>Adds the three options to <paramref name="command"/>.</summary>
    public static void AddTo(Command command)
    {
        command.Options.Add(Certificate);
        command.Options.Add(Key);
        command.Options.Add(Pkcs12);
    }

    /// <summary>Whether the options name the user's own CA rather than the install's.</summary>
    public static bool IsOwn(ParseResult result) =>
        result.GetValue(Certificate) is not null || result.GetValue(Key) is not null || result.GetValue(Pkcs12) is not null;

    /// <summary>Loads the CA the options name, or the install's (created only when <paramref name="createIfMissing"/>).</summary>
    /// <exception cref="CertificateException">The options are combined wrongly, or the CA cannot be loaded.</exception>
    public static CertificateAuthority Load(ParseResult result, bool createIfMissing = false, ILogger? logger = null)
    {
        var certificate = result.GetValue(Certificate);
        var key = result.GetValue(Key);
        var pkcs12 = result.GetValue(Pkcs12);
        if (pkcs12 is not null)
        {
            if (certificate is not null || key is not null)
            {
                throw new CertificateException("Use either --ca-p12, or --ca-cert with --ca-key, not both.");
            }

            return CertificateAuthority.LoadPkcs12(pkcs12, Environment.GetEnvironmentVariable(PasswordVariable), logger);
        }

        if (certificate is not null || key is not null)
        {
            if (certificate is null || key is null)
            {
                throw new CertificateException("--ca-cert and --ca-key go together: give both.");
            }

            return CertificateAuthority.LoadPem(certificate, key, logger);
        }

        return CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = CliOptions.ResolveHome(result), CreateIfMissing = createIfMissing }, logger);
    }
}
