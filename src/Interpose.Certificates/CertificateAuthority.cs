using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Certificates;

/// <summary>
/// The root certificate authority that signs forged leaf certificates: created once per install and kept in the
/// configuration directory, or brought by the user as PEM or PKCS#12.
/// </summary>
/// <remarks>
/// Files in the directory: <c>interpose-ca.pem</c> (certificate, PEM), <c>interpose-ca.cer</c> (certificate, DER, for
/// phones), <c>interpose-ca.key</c> (PKCS#8 private key, PEM, mode 0600) and <c>.lock</c> (creation lock).
/// </remarks>
public sealed class CertificateAuthority : IDisposable
{
    private readonly AsymmetricAlgorithm _signingKey;
    private bool _disposed;

    private CertificateAuthority(X509Certificate2 certificate, string? certificatePath, string? keyPath, string? derCertificatePath)
    {
        Certificate = certificate;
        CertificatePath = certificatePath;
        KeyPath = keyPath;
        DerCertificatePath = derCertificatePath;
        Sha256Fingerprint = CertificateFingerprint.Sha256(certificate);
        PublicCertificate = X509CertificateLoader.LoadCertificate(certificate.RawDataMemory.Span);

        // Hold the key object once: fetching it from the certificate on every forge would cost a native handle each time.
        if (certificate.GetECDsaPrivateKey() is { } ecdsa)
        {
            _signingKey = ecdsa;
            SignatureGenerator = X509SignatureGenerator.CreateForECDsa(ecdsa);
        }
        else if (certificate.GetRSAPrivateKey() is { } rsa)
        {
            _signingKey = rsa;
            SignatureGenerator = X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1);
        }
        else
        {
            PublicCertificate.Dispose();
            throw new CertificateException($"The CA certificate {certificate.Subject} has no usable ECDSA or RSA private key.");
        }

        NotBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        NotAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        SubjectKeyIdentifier = certificate.Extensions.OfType<X509SubjectKeyIdentifierExtension>().FirstOrDefault()?.SubjectKeyIdentifierBytes.ToArray();
    }

    /// <summary>The CA certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The SHA-256 fingerprint of the certificate as upper-case hex pairs joined by colons, as <c>openssl x509 -fingerprint -sha256</c> prints it.</summary>
    public string Sha256Fingerprint { get; }

    /// <summary>The certificate file (PEM, or PKCS#12 for <see cref="LoadPkcs12"/>), when the CA came from disk.</summary>
    public string? CertificatePath { get; }

    /// <summary>The PEM private key file, when the CA came from PEM files.</summary>
    public string? KeyPath { get; }

    /// <summary>The DER copy of the certificate (<c>interpose-ca.cer</c>), when the CA lives in the configuration directory.</summary>
    public string? DerCertificatePath { get; }

    /// <summary>Whether <see cref="LoadOrCreate"/> created this CA in this call (rather than loading an existing one).</summary>
    public bool Created { get; private init; }

    /// <summary>The certificate without its private key, for chains sent to clients.</summary>
    internal X509Certificate2 PublicCertificate { get; }

    /// <summary>Signs leaves with the CA key (ECDSA, or RSA PKCS#1 v1.5) and SHA-256.</summary>
    internal X509SignatureGenerator SignatureGenerator { get; }

    internal DateTimeOffset NotBefore { get; }

    internal DateTimeOffset NotAfter { get; }

    internal byte[]? SubjectKeyIdentifier { get; }

    /// <summary>
    /// Loads the install's CA from the configuration directory, creating it first if it does not exist. Safe to call from
    /// several processes at once: they end up with one CA.
    /// </summary>
    /// <param name="options">Where the CA lives and how a new one is made.</param>
    /// <param name="logger">Logs creation or loading at Information with the fingerprint and path.</param>
    /// <returns>The CA, with its private key.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="CertificateException">The files are malformed, the key is accessible by other users, the
    /// certificate is not a CA or does not match the key, the CA is incomplete, or it is missing and
    /// <see cref="CertificateAuthorityOptions.CreateIfMissing"/> is false.</exception>
    /// <exception cref="IOException">The directory or files cannot be read or written.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory or files are not accessible to this user.</exception>
    public static CertificateAuthority LoadOrCreate(CertificateAuthorityOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        logger ??= NullLogger.Instance;
        var store = new CertificateAuthorityStore(options.Directory ?? InterposeHome.Resolve());

        // Fast path without the lock: the PEM certificate is published last, so if it exists the key does too.
        if (store.Exists)
        {
            return LoadFromStore(store, logger);
        }

        if (!options.CreateIfMissing)
        {
            throw new CertificateException($"No CA in {store.Directory}; run: interpose ca init");
        }

        store.EnsureDirectory();
        using (store.AcquireLock(logger))
        {
            // Re-check under the lock: another process may have created the CA while we waited.
            if (store.Exists)
            {
                return LoadFromStore(store, logger);
            }

            if (File.Exists(store.KeyPath))
            {
                // The key is published before the certificate; a key alone means a creation was interrupted, or a
                // user's own key. Never overwrite a private key.
                throw new CertificateException($"Found {store.KeyPath} without {store.CertificatePemPath}; restore the certificate or remove the key to create a new CA.");
            }

            var (certificate, pkcs8) = RootCertificateFactory.Create(options.KeyAlgorithm, options.TimeProvider);
            try
            {
                // A stale DER copy from an interrupted creation would not match the new CA.
                File.Delete(store.CertificateDerPath);
                store.Write(pkcs8, certificate.RawDataMemory.Span);
            }
            catch
            {
                certificate.Dispose();
                throw;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pkcs8);
            }

            var authority = new CertificateAuthority(certificate, store.CertificatePemPath, store.KeyPath, store.CertificateDerPath) { Created = true };
            CertificateLog.CaCreated(logger, certificate.Subject, authority.Sha256Fingerprint, store.Directory);
            return authority;
        }
    }

    /// <summary>
    /// A throwaway CA that lives only in memory (never written, never trusted by anyone): the proxy's start-up warm-up
    /// forges and handshakes with it so that the first real client does not pay for the JIT of those paths.
    /// </summary>
    internal static CertificateAuthority CreateEphemeral(CertificateKeyAlgorithm keyAlgorithm, TimeProvider timeProvider)
    {
        var (certificate, pkcs8) = RootCertificateFactory.Create(keyAlgorithm, timeProvider);
        CryptographicOperations.ZeroMemory(pkcs8);
        return new CertificateAuthority(certificate, null, null, null);
    }

    /// <summary>Loads a CA from a PEM certificate and a PEM private key (PKCS#8, or SEC1/PKCS#1, unencrypted).</summary>
    /// <param name="certificatePath">The PEM certificate file.</param>
    /// <param name="keyPath">The PEM private key file; on Unix it must not be accessible by group or others.</param>
    /// <param name="logger">Logs the load at Information with the fingerprint and path.</param>
    /// <returns>The CA, with its private key.</returns>
    /// <exception cref="ArgumentNullException">A path is null.</exception>
    /// <exception cref="CertificateException">A file is missing or malformed, the key is accessible by other users or
    /// encrypted, the certificate is not a CA, or the key does not match it.</exception>
    /// <exception cref="IOException">A file cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">A file is not readable by this user.</exception>
    public static CertificateAuthority LoadPem(string certificatePath, string keyPath, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(certificatePath);
        ArgumentNullException.ThrowIfNull(keyPath);
        var authority = LoadPemCore(Path.GetFullPath(certificatePath), Path.GetFullPath(keyPath), derCertificatePath: null);
        CertificateLog.CaLoaded(logger ?? NullLogger.Instance, authority.Certificate.Subject, authority.Sha256Fingerprint, authority.CertificatePath!);
        return authority;
    }

    /// <summary>Loads a CA from a PKCS#12 (<c>.p12</c>/<c>.pfx</c>) file holding the CA certificate and its private key.</summary>
    /// <param name="path">The PKCS#12 file.</param>
    /// <param name="password">Its password, or <see langword="null"/> if it has none.</param>
    /// <param name="logger">Logs the load at Information with the fingerprint and path.</param>
    /// <returns>The CA, with its private key.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    /// <exception cref="CertificateException">The file is missing, malformed or the password is wrong, or it holds no
    /// CA certificate with its private key.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file is not readable by this user.</exception>
    public static CertificateAuthority LoadPkcs12(string path, string? password, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        path = Path.GetFullPath(path);
        RequireFile(path, "PKCS#12 file");
        X509Certificate2Collection collection;
        try
        {
            // Exportable so that Export(..., includeKey: true) works for a CA brought this way.
            collection = X509CertificateLoader.LoadPkcs12CollectionFromFile(path, password, X509KeyStorageFlags.Exportable);
        }
        catch (CryptographicException ex)
        {
            throw new CertificateException($"Cannot read PKCS#12 file {path}: wrong password or not a PKCS#12 file.", ex);
        }

        X509Certificate2? chosen = null;
        foreach (var certificate in collection)
        {
            if (chosen is null && certificate.HasPrivateKey)
            {
                chosen = certificate;
            }
            else
            {
                certificate.Dispose();
            }
        }

        if (chosen is null)
        {
            throw new CertificateException($"PKCS#12 file {path} holds no certificate with its private key.");
        }

        var authority = Create(chosen, path, keyPath: null, derCertificatePath: null);
        CertificateLog.CaLoaded(logger ?? NullLogger.Instance, chosen.Subject, authority.Sha256Fingerprint, path);
        return authority;
    }

    /// <summary>Exports the CA certificate, and its private key only when asked.</summary>
    /// <param name="format">PEM text, DER (certificate only) or PKCS#12.</param>
    /// <param name="includeKey">Whether to include the private key: anyone holding it can intercept this user's TLS.</param>
    /// <param name="pkcs12Password">The PKCS#12 password (AES-256 PBES2); <see langword="null"/> for none. Only PKCS#12 is
    /// encrypted: PEM and DER refuse a password rather than write the key in clear.</param>
    /// <returns>The encoded bytes; PEM is ASCII text.</returns>
    /// <exception cref="ArgumentException">The key is asked for in DER, which holds a certificate only; or a password
    /// is given with PEM or DER, which are not encrypted.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="format"/> is not a defined value.</exception>
    /// <exception cref="ObjectDisposedException">The CA was disposed.</exception>
    public byte[] Export(CertificateExportFormat format, bool includeKey, string? pkcs12Password = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);

        // Only PKCS#12 carries a password: ignored for PEM, the key would be written in clear while the caller believes
        // it protected (as `ca export` refuses --password with pem and der).
        if (pkcs12Password is not null && format is CertificateExportFormat.Pem or CertificateExportFormat.Der)
        {
            throw new ArgumentException($"A password protects a PKCS#12 export only: {format} is written unencrypted.", nameof(pkcs12Password));
        }

        switch (format)
        {
            case CertificateExportFormat.Der:
                if (includeKey)
                {
                    throw new ArgumentException("DER holds a certificate only; export the key as PEM or PKCS#12.", nameof(includeKey));
                }

                return Certificate.RawDataMemory.ToArray();

            case CertificateExportFormat.Pem:
                var text = new StringBuilder(Certificate.ExportCertificatePem()).Append('\n');
                if (includeKey)
                {
                    var keyPem = _signingKey.ExportPkcs8PrivateKeyPem();
                    text.Append(keyPem).Append('\n');
                }

                return Encoding.ASCII.GetBytes(text.ToString());

            case CertificateExportFormat.Pkcs12:
                if (includeKey)
                {
                    return Certificate.ExportPkcs12(Pkcs12ExportPbeParameters.Pbes2Aes256Sha256, pkcs12Password);
                }

                return new X509Certificate2Collection(PublicCertificate).Export(X509ContentType.Pkcs12, pkcs12Password)
                    ?? throw new CryptographicException("PKCS#12 export produced nothing.");

            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown export format.");
        }
    }

    /// <summary>Releases the certificate and the private key.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _signingKey.Dispose();
        PublicCertificate.Dispose();
        Certificate.Dispose();
    }

    private static CertificateAuthority LoadFromStore(CertificateAuthorityStore store, ILogger logger)
    {
        var authority = LoadPemCore(store.CertificatePemPath, store.KeyPath, store.CertificateDerPath);
        try
        {
            store.EnsureDerCopy(authority.Certificate.RawDataMemory.Span);
        }
        catch
        {
            authority.Dispose();
            throw;
        }

        CertificateLog.CaLoaded(logger, authority.Certificate.Subject, authority.Sha256Fingerprint, store.Directory);
        return authority;
    }

    private static CertificateAuthority LoadPemCore(string certificatePath, string keyPath, string? derCertificatePath)
    {
        RequireFile(certificatePath, "CA certificate");
        RequireFile(keyPath, "CA private key");
        CertificateAuthorityStore.CheckKeyFileIsPrivate(keyPath);

        X509Certificate2 publicOnly;
        try
        {
            publicOnly = X509Certificate2.CreateFromPem(File.ReadAllText(certificatePath));
        }
        catch (CryptographicException ex)
        {
            throw new CertificateException($"{certificatePath} is not a PEM certificate.", ex);
        }

        using (publicOnly)
        {
            var keyText = File.ReadAllText(keyPath);
            if (keyText.Contains("ENCRYPTED", StringComparison.Ordinal))
            {
                throw new CertificateException($"Private key {keyPath} is encrypted; decrypt it (openssl pkey -in KEY -out PLAIN.key) or use a PKCS#12 file with a password.");
            }

            X509Certificate2 withKey;
            try
            {
                withKey = publicOnly.GetKeyAlgorithm() switch
                {
                    Oids.EcPublicKey => WithKey(publicOnly, ECDsa.Create(), keyText),
                    Oids.RsaEncryption => WithKey(publicOnly, RSA.Create(), keyText),
                    var other => throw new CertificateException($"{certificatePath} has a key of type {other}; Interpose signs with ECDSA or RSA."),
                };
            }
            catch (ArgumentException ex)
            {
                // ImportFromPem: no usable PEM block; CopyWithPrivateKey: the key is not this certificate's.
                throw new CertificateException($"Private key {keyPath} is not a PEM key matching the certificate {certificatePath}.", ex);
            }
            catch (CryptographicException ex)
            {
                throw new CertificateException($"Private key {keyPath} is not a valid PEM key for the certificate {certificatePath}.", ex);
            }

            return Create(withKey, certificatePath, keyPath, derCertificatePath);
        }
    }

    private static X509Certificate2 WithKey<TKey>(X509Certificate2 certificate, TKey key, string keyPem)
        where TKey : AsymmetricAlgorithm
    {
        using (key)
        {
            key.ImportFromPem(keyPem);
            return key switch
            {
                ECDsa ecdsa => certificate.CopyWithPrivateKey(ecdsa),
                RSA rsa => certificate.CopyWithPrivateKey(rsa),
                _ => throw new CertificateException("Unsupported key type."),
            };
        }
    }

    /// <summary>Checks the certificate may act as a CA (RFC 5280 §4.2.1.9 and §4.2.1.3) and wraps it.</summary>
    private static CertificateAuthority Create(X509Certificate2 certificate, string? certificatePath, string? keyPath, string? derCertificatePath)
    {
        try
        {
            var where = certificatePath ?? certificate.Subject;
            var constraints = certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault();
            if (constraints is null || !constraints.CertificateAuthority)
            {
                throw new CertificateException($"{where} is not a CA certificate (basicConstraints CA:TRUE is missing); use a CA certificate, or let Interpose create one.");
            }

            var usage = certificate.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault();
            if (usage is not null && (usage.KeyUsages & X509KeyUsageFlags.KeyCertSign) == 0)
            {
                throw new CertificateException($"{where} may not sign certificates (keyUsage lacks keyCertSign); use a CA certificate, or let Interpose create one.");
            }

            return new CertificateAuthority(certificate, certificatePath, keyPath, derCertificatePath);
        }
        catch
        {
            certificate.Dispose();
            throw;
        }
    }

    private static void RequireFile(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new CertificateException($"{what} {path} does not exist.");
        }
    }
}
