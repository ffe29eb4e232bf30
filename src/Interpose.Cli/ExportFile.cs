using System.Security.Cryptography;

namespace Interpose.Cli;

/// <summary>Writes an exported file; one holding a secret (a private key, recorded flows with their cookies and tokens)
/// is created 0600 and never appears with looser rights.</summary>
internal static class ExportFile
{
    private const UnixFileMode SecretMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Writes <paramref name="content"/> to <paramref name="path"/>, replacing it.</summary>
    public static void Write(string path, byte[] content, bool secret)
    {
        if (!secret || OperatingSystem.IsWindows())
        {
            File.WriteAllBytes(path, content);
            return;
        }

        var temp = TempPath(path);
        try
        {
            using (var stream = CreateSecret(temp))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Writes what <paramref name="write"/> writes to <paramref name="path"/>, replacing it only once it is
    /// all written (a failure leaves the old file as it was); returns what <paramref name="write"/> returns.</summary>
    public static async Task<T> WriteAsync<T>(string path, bool secret, Func<Stream, Task<T>> write, CancellationToken cancellationToken)
    {
        var temp = TempPath(path);
        try
        {
            T result;
            await using (var stream = secret && !OperatingSystem.IsWindows()
                ? CreateSecret(temp)
                : new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                result = await write(stream);
                await stream.FlushAsync(cancellationToken);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
            return result;
        }
        finally
        {
            File.Delete(temp);
        }
    }

    // Overwriting in place would keep an existing file's (possibly looser) mode: write a 0600 temp file beside it and
    // rename.
    private static string TempPath(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        return Path.Combine(directory, $".{Path.GetFileName(path)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp");
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static FileStream CreateSecret(string temp) =>
        new(temp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = SecretMode });
}
