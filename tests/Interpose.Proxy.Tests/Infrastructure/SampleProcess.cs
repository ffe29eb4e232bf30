using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>
/// One of the programs under <c>samples/</c> as a child process: started with its own arguments, its listening port
/// parsed from the "Interpose listening on 127.0.0.1:PORT" line it prints to stderr.
/// </summary>
public sealed partial class SampleProcess : IAsyncDisposable
{
    /// <summary>Safety bound so a sample that never starts or never exits fails the test instead of hanging it.</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly List<string> _stdout;
    private readonly List<string> _stderr;
    private readonly Task _pumps;

    private SampleProcess(Process process, int port, List<string> stdout, List<string> stderr, Task pumps)
    {
        _process = process;
        Port = port;
        _stdout = stdout;
        _stderr = stderr;
        _pumps = pumps;
    }

    public int Port { get; }

    public Uri Url => new($"http://127.0.0.1:{Port}");

    public IReadOnlyList<string> StandardOutput
    {
        get
        {
            lock (_stdout)
            {
                return [.. _stdout];
            }
        }
    }

    public IReadOnlyList<string> StandardError
    {
        get
        {
            lock (_stderr)
            {
                return [.. _stderr];
            }
        }
    }

    /// <summary>
    /// The sample's dll in its own output folder (same configuration as this test assembly): it is built first through
    /// a ProjectReference with ReferenceOutputAssembly=false and runs with its own deps and runtimeconfig.
    /// </summary>
    public static string PathOf(string sample) => AppContext.BaseDirectory
        .Replace(Path.Combine("tests", "Interpose.Proxy.Tests"), Path.Combine("samples", sample), StringComparison.Ordinal) + sample + ".dll";

    /// <summary>Starts <c>dotnet samples/NAME/.../NAME.dll args...</c> and waits for its listening line.</summary>
    public static async Task<SampleProcess> StartAsync(string sample, IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(PathOf(sample));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        // The CA directory comes from the arguments or from the test, never from the developer's environment.
        info.Environment.Remove("INTERPOSE_HOME");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info)!;
        var stdout = new List<string>();
        var stderr = new List<string>();
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pumps = Task.WhenAll(PumpAsync(process.StandardOutput, stdout, null), PumpAsync(process.StandardError, stderr, listening));
        int port;
        try
        {
            port = await listening.Task.WaitAsync(MaxWait);
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            process.Dispose();
            throw new InvalidOperationException($"{sample} did not start: " + ex.Message + "\n" + string.Join('\n', stderr));
        }

        return new SampleProcess(process, port, stdout, stderr, pumps);
    }

    /// <summary>Sends SIGTERM, waits for the process to exit and for its output to be read to the end; returns the exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])!)
        {
            await kill.WaitForExitAsync();
        }

        using var guard = new CancellationTokenSource(MaxWait);
        await _process.WaitForExitAsync(guard.Token);
        await _pumps;
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static async Task PumpAsync(StreamReader reader, List<string> lines, TaskCompletionSource<int>? listening)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (lines)
            {
                lines.Add(line);
            }

            if (listening is not null && ListeningLine().Match(line) is { Success: true } match)
            {
                listening.TrySetResult(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
            }
        }

        listening?.TrySetException(new InvalidOperationException("exited before listening"));
    }

    [GeneratedRegex(@"^Interpose listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningLine();
}
