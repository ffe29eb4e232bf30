using System.Runtime.InteropServices;

namespace Interpose.Cli;

/// <summary>
/// How the natively compiled command runs C# scripts, which native AOT cannot compile or load: it replaces itself
/// (<c>execv</c>, the same process id, so signals and the exit code are the JIT build's own) with its JIT build,
/// <c>dotnet jit/interpose.dll</c> shipped beside the binary, given the same arguments. docs/architecture.md#scripts.
/// </summary>
internal static partial class JitRelaunch
{
    /// <summary>The folder beside the native binary that holds the framework-dependent build (Interpose.Cli.csproj).</summary>
    public const string DirectoryName = "jit";

    /// <summary>Whether this process cannot compile scripts itself (native AOT).</summary>
    public static bool Needed => !ScriptOptions.IsSupported;

    /// <summary>Replaces this process with the JIT build; returns only when that failed, with the exit code to use.</summary>
    public static int Exec(IReadOnlyList<string> args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, DirectoryName, "interpose.dll");
        if (!File.Exists(dll))
        {
            return CliErrors.Report($"-s: C# scripts need the JIT build of interpose, which is missing ({dll})");
        }

        if (FindDotnet() is not { } dotnet)
        {
            return CliErrors.Report("-s: C# scripts need the dotnet host to run the JIT build of interpose; it was not found (set DOTNET_ROOT)");
        }

        string?[] argv = [dotnet, dll, .. args, null];
        _ = ExecV(dotnet, argv);
        return CliErrors.Report($"-s: could not start the JIT build with {dotnet} (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>The dotnet host: DOTNET_ROOT's (how dotnet tool installs say where it is), else the first on PATH.</summary>
    private static string? FindDotnet()
    {
        string[] roots = [Environment.GetEnvironmentVariable("DOTNET_ROOT") ?? string.Empty, .. (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator)];
        foreach (var root in roots)
        {
            if (root.Length > 0 && Path.Combine(root, "dotnet") is var candidate && File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    // POSIX execv(3): the new program keeps the process id, its environment, open standard streams and parent.
    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ExecV(string path, string?[] argv);
}
