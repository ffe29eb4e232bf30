using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Certificates;

/// <summary>Fingerprints in the form <c>openssl x509 -fingerprint -sha256</c> prints.</summary>
internal static class CertificateFingerprint
{
    /// <summary>The SHA-256 of the DER certificate as upper-case hex pairs separated by colons.</summary>
    public static string Sha256(X509Certificate2 certificate)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(certificate.RawDataMemory.Span, hash);
        return string.Create((hash.Length * 3) - 1, hash.ToArray(), static (chars, bytes) =>
        {
            const string Hex = "0123456789ABCDEF";
            for (var i = 0; i < bytes.Length; i++)
            {
                var at = i * 3;
                chars[at] = Hex[bytes[i] >> 4];
                chars[at + 1] = Hex[bytes[i] & 0xF];
                if (at + 2 < chars.Length)
                {
                    chars[at + 2] = ':';
                }
            }
        });
    }
}
