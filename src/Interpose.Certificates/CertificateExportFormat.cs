namespace Interpose.Certificates;

/// <summary>The encoding <see cref="CertificateAuthority.Export"/> produces.</summary>
public enum CertificateExportFormat
{
    /// <summary>PEM text (RFC 7468): the certificate, then the PKCS#8 private key when asked for.</summary>
    Pem,

    /// <summary>The DER-encoded certificate alone (what Android and Windows import as a <c>.cer</c>/<c>.crt</c> file).</summary>
    Der,

    /// <summary>A PKCS#12 (<c>.p12</c>/<c>.pfx</c>) bundle, protected by a password, with the private key when asked for.</summary>
    Pkcs12,
}
