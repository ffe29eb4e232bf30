using System.Security.Cryptography;

namespace Interpose.Cli;

/// <summary>Writes an exported file; one holding a private key is created 0600 and never appears with looser rights.</summary>
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

        // Overwriting in place would keep an existing file's (possibly looser) mode: write a 0600 temp file and rename.
        var directory = Path.GetDirectoryName(path) ?? ".";
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp");
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = SecretMode }))
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
}
