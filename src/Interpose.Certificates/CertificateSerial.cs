using System.Security.Cryptography;

namespace Interpose.Certificates;

/// <summary>Random certificate serial numbers.</summary>
internal static class CertificateSerial
{
    // RFC 5280 §4.1.2.2: at most 20 octets; CA/Browser Forum Baseline Requirements §7.1: at least 64 bits from a CSPRNG.
    // 16 bytes (127 random bits after clearing the sign bit) makes collisions between forged leaves negligible.
    internal const int Length = 16;

    /// <summary>Returns 16 CSPRNG bytes, big-endian, encoding a positive non-zero INTEGER.</summary>
    public static byte[] Create()
    {
        var serial = RandomNumberGenerator.GetBytes(Length);

        // RFC 5280 §4.1.2.2: "The serial number MUST be a positive integer". DER INTEGERs are two's complement, so
        // clear the top bit; a non-zero first byte also keeps the encoding minimal (no leading 0x00 octet).
        serial[0] &= 0x7F;
        if (serial[0] == 0)
        {
            serial[0] = 0x01;
        }

        return serial;
    }
}
