namespace Interpose.Certificates;

/// <summary>Object identifiers the component checks or writes.</summary>
internal static class Oids
{
    // RFC 5480 §2.1.1: id-ecPublicKey.
    public const string EcPublicKey = "1.2.840.10045.2.1";

    // RFC 8017 Appendix A.1: rsaEncryption.
    public const string RsaEncryption = "1.2.840.113549.1.1.1";

    // RFC 5280 §4.2.1.12: id-kp-serverAuth.
    public const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
}
