using System.Diagnostics;

namespace Interpose.Core.Tests.Flows;

/// <summary>
/// A fact that needs the npm package <c>har-validator</c>: installed once per machine with npm into a temporary folder
/// at discovery; the test is skipped, and says why, when npm is missing or the registry cannot be reached.
/// </summary>
public sealed class HarValidatorFactAttribute : FactAttribute
{
    /// <summary>The version installed: the last release of har-validator (HAR 1.2 schemas of har-schema 2.0).</summary>
    public const string Package = "har-validator@5.1.5";

    /// <summary>Bounds npm, so that a registry that does not answer skips the test instead of hanging discovery.</summary>
    private static readonly TimeSpan InstallBound = TimeSpan.FromMinutes(2);

    private static readonly Lazy<string?> Problem = new(Install);

    public HarValidatorFactAttribute()
    {
        if (Problem.Value is { } problem)
        {
            Skip = "har-validator unavailable: " + problem;
        }
    }

    /// <summary>The folder whose node_modules holds har-validator.</summary>
    public static string Folder { get; } = Path.Combine(Path.GetTempPath(), "interpose-har-validator");

    private static string? Install()
    {
        if (File.Exists(Path.Combine(Folder, "node_modules", "har-validator", "package.json")))
        {
            return null;
        }

        Directory.CreateDirectory(Folder);
        try
        {
            var (code, output) = Run("npm", Folder, "install", "--no-audit", "--no-fund", "--prefix", Folder, Package);
            return code == 0 ? null : $"npm install {Package} failed ({code}): {output}";
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return "npm is not installed: " + ex.Message;
        }
    }

    /// <summary>Runs har-validator on a HAR file: exit code 0 and <c>valid N</c> (N entries) when it is valid, else its
    /// errors as JSON.</summary>
    public static (int ExitCode, string Output) Validate(string harPath) => Run("node", Folder, "-e", ValidateScript, harPath);

    private const string ValidateScript = "const v=require('har-validator');const h=JSON.parse(require('fs').readFileSync(process.argv[1]));"
        + "v.har(h).then(()=>console.log('valid '+h.log.entries.length)).catch(e=>{console.log(JSON.stringify(e.errors||e.message));process.exit(1);});";

    public static (int ExitCode, string Output) Run(string file, string directory, params string[] args)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(InstallBound))
        {
            process.Kill(entireProcessTree: true);
            return (-1, "timed out");
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
