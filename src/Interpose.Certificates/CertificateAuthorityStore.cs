using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Interpose.Certificates;

/// <summary>
/// The CA's files in the configuration directory, and the rules that keep them safe: the key is never readable
/// by others (0600 from its first byte), files appear whole (temp file + rename), and one process creates the CA.
/// </summary>
internal sealed class CertificateAuthorityStore
{
    internal const string CertificatePemFileName = "interpose-ca.pem";
    internal const string CertificateDerFileName = "interpose-ca.cer";
    internal const string KeyFileName = "interpose-ca.key";
    internal const string LockFileName = ".lock";

    // How long a process waits for another one creating the CA: RSA-3072 generation takes up to a few seconds on
    // a slow machine, so 30 s (600 attempts x 50 ms) leaves a wide margin before reporting the lock as stuck.
    internal const int LockAttempts = 600;
    internal static readonly TimeSpan LockRetryInterval = TimeSpan.FromMilliseconds(50);

    internal const UnixFileMode PrivateDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    internal const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    internal const UnixFileMode PublicFileMode = PrivateFileMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    // Any access for group or others makes a private key file unsafe.
    internal const UnixFileMode GroupOrOthers = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    public CertificateAuthorityStore(string directory)
    {
        Directory = Path.GetFullPath(directory);
        CertificatePemPath = Path.Combine(Directory, CertificatePemFileName);
        CertificateDerPath = Path.Combine(Directory, CertificateDerFileName);
        KeyPath = Path.Combine(Directory, KeyFileName);
    }

    public string Directory { get; }

    public string CertificatePemPath { get; }

    public string CertificateDerPath { get; }

    public string KeyPath { get; }

    /// <summary>The PEM certificate is written last, so its presence means the CA is complete.</summary>
    public bool Exists => File.Exists(CertificatePemPath);

    /// <summary>Creates the directory (0700 on Unix) if missing.</summary>
    public void EnsureDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(Directory);
        }
        else
        {
            System.IO.Directory.CreateDirectory(Directory, PrivateDirectoryMode);
        }
    }

    /// <summary>
    /// Takes the exclusive creation lock. FileShare.None is an exclusive flock on Unix and a share-mode lock on
    /// Windows, and either is released by the OS if the process dies, so a crash never leaves a stale lock.
    /// </summary>
    /// <exception cref="CertificateException">Another process held the lock for the whole wait.</exception>
    public FileStream AcquireLock(ILogger logger)
    {
        var path = Path.Combine(Directory, LockFileName);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < LockAttempts)
            {
                if (attempt == 1)
                {
                    CertificateLog.CaLockBusy(logger, Directory);
                }

                // NOTE: a blocking wait, on purpose: this runs once at start-up, before any listener exists, and
                // LoadOrCreate is synchronous by contract. Never call it on the connection path.
                Thread.Sleep(LockRetryInterval);
            }
            catch (IOException ex)
            {
                throw new CertificateException($"Another process has held {path} for {LockAttempts * LockRetryInterval.TotalSeconds:0} s; stop it, or delete the lock file if none runs.", ex);
            }
        }
    }

    /// <summary>Writes the CA's three files, key first and PEM certificate last (the completion marker).</summary>
    public void Write(ReadOnlySpan<byte> pkcs8PrivateKey, ReadOnlySpan<byte> certificateDer)
    {
        var keyPem = PemEncoding.Write("PRIVATE KEY", pkcs8PrivateKey);
        var keyBytes = Encoding.ASCII.GetBytes(keyPem);
        try
        {
            WriteAtomically(KeyPath, keyBytes, PrivateFileMode);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keyBytes);
            Array.Clear(keyPem);
        }

        WriteAtomically(CertificateDerPath, certificateDer, PublicFileMode);
        WriteAtomically(CertificatePemPath, Encoding.ASCII.GetBytes(PemEncoding.Write("CERTIFICATE", certificateDer)), PublicFileMode);
    }

    /// <summary>Writes the DER copy of the certificate if it is missing (it is derived from the PEM one).</summary>
    public void EnsureDerCopy(ReadOnlySpan<byte> certificateDer)
    {
        if (File.Exists(CertificateDerPath))
        {
            return;
        }

        try
        {
            WriteAtomically(CertificateDerPath, certificateDer, PublicFileMode);
        }
        catch (IOException) when (File.Exists(CertificateDerPath))
        {
            // Another process wrote it first; the content is the same.
        }
    }

    /// <summary>
    /// Refuses a private key file that group or others may access, with the command that fixes it.
    /// </summary>
    /// <exception cref="CertificateException">The file's mode grants any access beyond its owner.</exception>
    public static void CheckKeyFileIsPrivate(string keyPath)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var mode = File.GetUnixFileMode(keyPath);
        if ((mode & GroupOrOthers) != 0)
        {
            var octal = Convert.ToString((int)mode & 0x1FF, 8);
            throw new CertificateException($"Private key {keyPath} is accessible by other users (mode {octal}); run: chmod 600 {ShellQuote(keyPath)}");
        }
    }

    /// <summary>
    /// Writes a file whole or not at all: a temp file in the same directory, created with its final mode (so a key is
    /// never readable by others, not even for a moment), flushed to disk, then renamed without replacing.
    /// </summary>
    private static void WriteAtomically(string path, ReadOnlySpan<byte> content, UnixFileMode mode)
    {
        var temp = $"{path}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode;
        }

        try
        {
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            // rename(2) is atomic; overwrite: false so an existing file is never replaced.
            File.Move(temp, path, overwrite: false);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static string ShellQuote(string path)
    {
        foreach (var c in path)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or ',' or ':' or '@' or '%'))
            {
                return "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
            }
        }

        return path;
    }
}
