using System.Diagnostics;
using System.Globalization;

namespace Interpose.Cli;

/// <summary>
/// The temporary store files that <c>run --web</c> without <c>-w</c> wrote in <c>HOME/web-tmp</c> before it kept its
/// flows in memory (<see cref="Interpose.Store.MemoryFlowStore"/>). A run killed with SIGKILL could not delete its file,
/// so each <c>run --web</c> still sweeps the files whose process is gone: a stale file of recorded traffic does not stay
/// on disk after an upgrade.
/// </summary>
internal static class TemporaryFlowStores
{
    private const string Prefix = "interpose-web-";

    /// <summary>Deletes the stores under <paramref name="home"/>'s <c>web-tmp</c> whose process no longer runs, and the
    /// directory when it is then empty; nothing when there is no such directory.</summary>
    /// <param name="home">The Interpose home directory.</param>
    public static void Sweep(string home)
    {
        var directory = Path.Combine(home, "web-tmp");
        if (!Directory.Exists(directory))
        {
            return;
        }

        SweepDirectory(directory);
        try
        {
            if (!Directory.EnumerateFileSystemEntries(directory).Any())
            {
                Directory.Delete(directory);
            }
        }
        catch (IOException)
        {
            // A file appeared (an older version running beside this one): the directory stays.
        }
    }

    /// <summary>Deletes a store and its WAL and shared-memory files.</summary>
    private static void Delete(string path)
    {
        foreach (var file in new[] { path, path + "-wal", path + "-shm" })
        {
            File.Delete(file);
        }
    }

    /// <summary>Deletes the stores (with their -wal and -shm files) whose process id names no running process.</summary>
    private static void SweepDirectory(string directory)
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
