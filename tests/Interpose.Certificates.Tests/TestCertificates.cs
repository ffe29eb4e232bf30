using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Certificates.Tests;

/// <summary>Builders for certificates the tests bring in, and a runner for the real openssl.</summary>
internal static class TestCertificates
{
    public const string EcdsaWithSha256 = "1.2.840.10045.4.3.2";
    public const string Sha256WithRsa = "1.2.840.113549.1.1.11";
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    public const string NistP256 = "1.2.840.10045.3.1.7";

    /// <summary>Creates a self-signed certificate with its ECDSA key; a CA unless <paramref name="isCa"/> is false.</summary>
    public static (X509Certificate2 Certificate, ECDsa Key) SelfSigned(string commonName, bool isCa, bool withKeyCertSign = true)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(isCa, false, 0, true));
        var usage = withKeyCertSign ? X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.DigitalSignature : X509KeyUsageFlags.DigitalSignature;
        request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, true));
        var now = TimeProvider.System.GetUtcNow();
        return (request.CreateSelfSigned(now.AddDays(-1), now.AddYears(1)), key);
    }

    /// <summary>Writes a PEM certificate and a 0600 PEM key file.</summary>
    public static void WritePem(X509Certificate2 certificate, AsymmetricAlgorithm key, string certificatePath, string keyPath)
    {
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>Runs openssl with the arguments and returns its exit code and combined output.</summary>
    public static async Task<(int ExitCode, string Output)> OpenSslAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo("openssl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("openssl did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    public static T Extension<T>(X509Certificate2 certificate)
        where T : X509Extension => Assert.Single(certificate.Extensions.OfType<T>());

    public static DateTimeOffset Utc(DateTime local) => new(local.ToUniversalTime(), TimeSpan.Zero);
}
