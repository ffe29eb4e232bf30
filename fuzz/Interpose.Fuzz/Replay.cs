namespace Interpose.Fuzz;

/// <summary>Runs a corpus (one folder per target) through the targets without a fuzzer: the regression mode.</summary>
public static class Replay
{
    /// <summary>Runs every file of <c>DIRECTORY/&lt;target&gt;/</c> through that target.</summary>
    /// <param name="directory">The corpus root, with one sub-folder per target name.</param>
    /// <param name="log">Where to report each failing input.</param>
    /// <returns>How many inputs made a target throw something other than a protocol rejection.</returns>
    /// <exception cref="DirectoryNotFoundException"><paramref name="directory"/> does not exist.</exception>
    public static int Run(string directory, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException(directory);
        }

        var failures = 0;
        var inputs = 0;
        foreach (var (name, target) in FuzzTargets.All)
        {
            var folder = Path.Combine(directory, name);
            if (!Directory.Exists(folder))
            {
                continue;
            }

            foreach (var file in Directory.EnumerateFiles(folder).Order(StringComparer.Ordinal))
            {
                inputs++;
                try
                {
                    target(File.ReadAllBytes(file));
                }
#pragma warning disable CA1031 // Any exception escaping a target is exactly what this mode reports.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    failures++;
                    log.WriteLine($"CRASH {name} {file}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        }

        log.WriteLine($"{inputs} inputs replayed, {failures} crashes");
        return failures;
    }
}
