using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests;

/// <summary>Runtime settings the <c>interpose</c> command ships with, checked in the running process (JIT and native).</summary>
public sealed class CommandTuningTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("interpose-tuning-").FullName;

    /// <summary>
    /// The gen0 budget cap (4 MiB) keeps the proxy's memory the same on every host instead of following the CPU's cache
    /// size; it must reach the process from runtimeconfig.json (JIT) or from the native binary itself.
    /// </summary>
    [Fact]
    public async Task The_command_runs_with_its_gen0_budget_cap()
    {
        await using var proxy = await InterposeProcess.StartAsync(_home, "--verbose");

        Assert.Contains(proxy.StandardOutput.Concat(proxy.StandardError), line => line.Contains("GC gen0 budget capped at 4194304 bytes", StringComparison.Ordinal));
    }

    /// <summary>
    /// Idle thread-pool workers sleep without spinning first (the spin was 11-13% of the proxy's CPU with a new TLS
    /// connection per request); like the gen0 cap it must reach the process from runtimeconfig.json or the native binary.
    /// </summary>
    [Fact]
    public async Task The_command_runs_with_thread_pool_spinning_off()
    {
        await using var proxy = await InterposeProcess.StartAsync(_home, "--verbose");

        Assert.Contains(proxy.StandardOutput.Concat(proxy.StandardError), line => line.Contains("Thread-pool spin limit 0 ", StringComparison.Ordinal));
    }

    /// <summary>
    /// The runtime's diagnostic port (a Unix socket in the temp directory, named after the process) is what
    /// dotnet-counters, dotnet-trace and dotnet-gcdump find and connect to (a named pipe on Windows); a native build
    /// without EventSource support has none.
    /// </summary>
    [Fact]
    public async Task The_command_opens_the_diagnostic_port_dotnet_counters_attaches_to()
    {
        await using var proxy = await InterposeProcess.StartAsync(_home);

        // On Linux the name carries the process's start time (/proc/PID/stat field 22) after its id, so that a socket
        // left behind by an earlier process with the same (recycled) id is not taken for this one's.
        var ports = OperatingSystem.IsWindows()
            ? Directory.GetFiles(@"\\.\pipe\", $"dotnet-diagnostic-{proxy.ProcessId}")
            : OperatingSystem.IsLinux()
                ? Directory.GetFiles(Path.GetTempPath(), $"dotnet-diagnostic-{proxy.ProcessId}-{StartTime(proxy.ProcessId)}-socket")
                : Directory.GetFiles(Path.GetTempPath(), $"dotnet-diagnostic-{proxy.ProcessId}-*-socket");
        Assert.Single(ports);
    }

    public void Dispose() => Directory.Delete(_home, recursive: true);

    /// <summary>proc(5): field 22 of /proc/PID/stat, after the parenthesised command name (which may hold spaces).</summary>
    private static string StartTime(int processId)
    {
        var stat = File.ReadAllText($"/proc/{processId}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19];
    }
}
