using System.Diagnostics;
using System.Globalization;

namespace Interpose.Cli;

/// <summary>
/// Where <c>run --web</c> without <c>-w</c> records: a store file of the process's own in <c>HOME/web-tmp</c>, deleted
/// when the process ends. A process killed with SIGKILL cannot delete it, so each start first sweeps the files whose
/// process is gone.
/// </summary>
/// <remarks>
/// NOTE: deleting the file right after opening it (delete-on-open) does not work with SQLite: the unix VFS checks that
/// the database file is still linked and refuses writes to an unlinked one (SQLITE_READONLY_DBMOVED), and the web UI
/// opens its own readers by path. Hence a directory swept at the next start. It sits in the Interpose home (the user's
/// own directory, beside the CA key) rather than the shared /tmp, and is created owner-only (0700), so no other user
/// can read recorded traffic or plant files there.
/// </remarks>
internal static class TemporaryFlowStores
{
    private const string Prefix = "interpose-web-";

    /// <summary>Creates (owner-only) the directory under <paramref name="home"/>, deletes the stores of processes that
    /// no longer run, and returns a new store path for this process.</summary>
    /// <param name="home">The Interpose home directory.</param>
    /// <returns>The path of this process's store (not created yet).</returns>
    /// <exception cref="IOException">The directory cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory cannot be created.</exception>
    public static string Create(string home)
    {
        var directory = Path.Combine(home, "web-tmp");
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            // An older directory, or one made with another umask, is narrowed too.
            File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        Sweep(directory);
        return Path.Combine(directory, $"{Prefix}{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}.db");
    }

    /// <summary>Deletes a store and its WAL and shared-memory files.</summary>
    /// <param name="path">The store's path.</param>
    public static void Delete(string path)
    {
        foreach (var file in new[] { path, path + "-wal", path + "-shm" })
        {
            File.Delete(file);
        }
    }

    /// <summary>Deletes the stores (with their -wal and -shm files) whose process id names no running process.</summary>
    private static void Sweep(string directory)
    {
        foreach (var path in Directory.EnumerateFiles(directory, Prefix + "*.db"))
        {
            var name = Path.GetFileName(path);
            var dash = name.IndexOf('-', Prefix.Length);
            if (dash < 0 || !int.TryParse(name.AsSpan(Prefix.Length, dash - Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                || IsRunning(pid))
            {
                // A live process's store (or a reused pid: that file waits for a later sweep).
                continue;
            }

            try
            {
                Delete(path);
            }
            catch (IOException)
            {
                // Being deleted by another start at the same moment, or unreadable: the next start tries again.
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
