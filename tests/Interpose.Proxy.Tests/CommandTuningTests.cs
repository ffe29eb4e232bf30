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

    public void Dispose() => Directory.Delete(_home, recursive: true);
}
