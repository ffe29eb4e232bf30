using System.Diagnostics;

namespace Interpose.Cli.Tests;

/// <summary>Runs the built <c>interpose</c> command as a real process with its own configuration directory.</summary>
internal static class CliRun
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    public static async Task<CliResult> RunAsync(string home, params string[] arguments)
    {
        using var process = Start(home, arguments);
        return await FinishAsync(process);
    }

    public static async Task<CliResult> RunWithEnvironmentAsync(string home, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        using var process = Start(home, arguments, environment);
        return await FinishAsync(process);
    }

    public static Process Start(string home, params string[] arguments) => Start(home, arguments, new Dictionary<string, string>());

    private static Process Start(string home, string[] arguments, IReadOnlyDictionary<string, string> environment)
    {
        // INTERPOSE_CLI names a native build of the command (CI runs these tests again against the native AOT
        // binary); otherwise the test host's own dotnet runs the interpose.dll built beside the tests.
        var native = Environment.GetEnvironmentVariable("INTERPOSE_CLI");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(native is { Length: > 0 } ? native : dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (native is not { Length: > 0 })
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "interpose.dll"));
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["INTERPOSE_HOME"] = home;
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        return Process.Start(start) ?? throw new InvalidOperationException("interpose did not start");
    }

    public static async Task<CliResult> FinishAsync(Process process)
    {
        using var timeout = new CancellationTokenSource(Limit);
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}

internal sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The fingerprint from a "SHA-256 fingerprint:" line of init or show.</summary>
    public string Fingerprint()
    {
        var line = Assert.Single(Stdout.Split('\n'), l => l.StartsWith("SHA-256 fingerprint:", StringComparison.Ordinal));
        return line["SHA-256 fingerprint:".Length..].Trim();
    }

    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}
