using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>The real <c>interpose run</c> command as a child process, for end-to-end tests.</summary>
public sealed partial class InterposeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];
    private readonly Task _stdoutPump;
    private readonly Task _stderrPump;
    private readonly LineSignal _lineWritten = new();

    private InterposeProcess(Process process, string home, int port)
    {
        _process = process;
        Home = home;
        Port = port;
        _stdoutPump = Task.CompletedTask;
        _stderrPump = Task.CompletedTask;
    }

    private InterposeProcess(Process process, string home, int port, Task stdoutPump, Task stderrPump, List<string> stdout, List<string> stderr, LineSignal lineWritten)
        : this(process, home, port)
    {
        _lineWritten = lineWritten;
        _stdoutPump = stdoutPump;
        _stderrPump = stderrPump;
        _stdout = stdout;
        _stderr = stderr;
    }

    /// <summary>interpose.dll in the CLI project's own output folder (same configuration as this test assembly).</summary>
    public static string CliPath { get; } = AppContext.BaseDirectory
        .Replace(Path.Combine("tests", "Interpose.Proxy.Tests"), Path.Combine("src", "Interpose.Cli"), StringComparison.Ordinal) + "interpose.dll";

    public string Home { get; }

    public int Port { get; }

    public int ProcessId => _process.Id;

    public Uri Url => new($"http://127.0.0.1:{Port}");

    public string CaPemPath => Path.Combine(Home, "interpose-ca.pem");

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
    /// A native build of the command to test instead of <see cref="CliPath"/> (CI runs the end-to-end tests again
    /// against the native AOT binary), from the INTERPOSE_CLI environment variable; null for the dotnet build.
    /// </summary>
    public static string? NativeCliPath { get; } = Environment.GetEnvironmentVariable("INTERPOSE_CLI") is { Length: > 0 } path ? path : null;

    /// <summary>Starts <c>interpose run --listen 127.0.0.1:0</c> plus <paramref name="args"/>, and waits for its listening line.</summary>
    public static Task<InterposeProcess> StartAsync(string home, params string[] args) =>
        StartProgramAsync(NativeCliPath ?? CliPath, ["--home", home, "run", "--listen", "127.0.0.1:0", .. args], home, environment: null);

    /// <summary>Starts <c>interpose run</c> with <paramref name="args"/> only (no <c>--listen</c>: the default address), and waits for its listening line.</summary>
    public static Task<InterposeProcess> StartWithDefaultListenAsync(string home, params string[] args) =>
        StartProgramAsync(NativeCliPath ?? CliPath, ["--home", home, "run", .. args], home, environment: null);

    /// <summary>
    /// Starts one of the programs under <c>samples/</c> from its own output folder (built first through a
    /// ProjectReference with ReferenceOutputAssembly=false), and waits for its listening line.
    /// </summary>
    public static Task<InterposeProcess> StartSampleAsync(string sample, string home, IEnumerable<string> args, IDictionary<string, string>? environment = null) =>
        StartProgramAsync(
            AppContext.BaseDirectory.Replace(Path.Combine("tests", "Interpose.Proxy.Tests"), Path.Combine("samples", sample), StringComparison.Ordinal) + sample + ".dll",
            args,
            home,
            environment);

    private static async Task<InterposeProcess> StartProgramAsync(string program, IEnumerable<string> args, string home, IDictionary<string, string>? environment)
    {
        // A .dll runs on dotnet; anything else is a native executable.
        var managed = program.EndsWith(".dll", StringComparison.Ordinal);
        var info = new ProcessStartInfo(managed ? "dotnet" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (managed)
        {
            info.ArgumentList.Add(program);
        }

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
        var lineWritten = new LineSignal();
        var stdoutPump = PumpAsync(process.StandardOutput, stdout, null, lineWritten.Pulse);
        var stderrPump = PumpAsync(process.StandardError, stderr, listening, lineWritten.Pulse);
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        int port;
        try
        {
            port = await listening.Task.WaitAsync(guard.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{Path.GetFileName(program)} did not start: " + string.Join('\n', stderr), ex);
        }

        return new InterposeProcess(process, home, port, stdoutPump, stderrPump, stdout, stderr, lineWritten);
    }

    /// <summary>
    /// curl through this proxy, trusting its CA, with the response head included (<c>--include</c>, without the
    /// CONNECT's); <paramref name="args"/> before the URL choose the HTTP version, headers, body.
    /// </summary>
    public Task<ProcessResult> CurlAsync(string url, params string[] args) =>
        ProcessResult.RunAsync("curl", [
            "--silent", "--show-error", "--include", "--suppress-connect-headers", "--proxy", Url.ToString(), "--noproxy", "", "--cacert", CaPemPath,
            .. args, url]);

    /// <summary>Copies what the process wrote (standard error, then standard output) to a test's output.</summary>
    public void WriteOutputTo(Xunit.Abstractions.ITestOutputHelper output)
    {
        foreach (var line in StandardError.Concat(StandardOutput))
        {
            output.WriteLine(line);
        }
    }

    /// <summary>
    /// The first line on standard output or standard error that <paramref name="match"/> accepts, now or when it is
    /// written; fails after <see cref="BoundedRead.Limit"/>, or when the process has exited without writing it.
    /// </summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match)
    {
        var deadline = DateTime.UtcNow + BoundedRead.Limit;
        while (true)
        {
            // Taken before looking, so that a line written in between still wakes this wait.
            var changed = _lineWritten.Next;
            if (StandardOutput.Concat(StandardError).FirstOrDefault(match) is { } line)
            {
                return line;
            }

            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero || (_stdoutPump.IsCompleted && _stderrPump.IsCompleted))
            {
                throw new TimeoutException("no such line from the process; it wrote:\n" + string.Join('\n', StandardError.Concat(StandardOutput)));
            }

            await Task.WhenAny(changed, Task.WhenAll(_stdoutPump, _stderrPump), Task.Delay(remaining));
        }
    }

    /// <summary>Sends SIGTERM and returns at once (<see cref="WaitForExitAsync"/> waits for the exit).</summary>
    public async Task SignalTerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
    }

    /// <summary>Waits (at most 60 s) for the process to exit and for its output to be read; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync()
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(guard.Token);
        await Task.WhenAll(_stdoutPump, _stderrPump);
        return _process.ExitCode;
    }

    private static async Task PumpAsync(StreamReader reader, List<string> lines, TaskCompletionSource<int>? listening, Action? written = null)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (lines)
            {
                lines.Add(line);
            }

            written?.Invoke();

            if (listening is not null && ListeningLine().Match(line) is { Success: true } match)
            {
                listening.TrySetResult(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
            }
        }

        listening?.TrySetException(new InvalidOperationException("interpose exited before listening: " + string.Join('\n', lines)));
    }

    /// <summary>The process's resident set size now and at its peak (VmRSS, VmHWM from /proc), in bytes.</summary>
    public (long Current, long Peak) Memory()
    {
        long current = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                current = KiloBytes(line) * 1024;
            }
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                peak = KiloBytes(line) * 1024;
            }
        }

        return (current, peak);

        static long KiloBytes(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    /// <summary>Sends SIGTERM and waits for the exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        await SignalTerminateAsync();
        return await WaitForExitAsync();
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

    /// <summary>A task completed (and replaced) each time the process writes a line, so a waiter wakes without polling.</summary>
    private sealed class LineSignal
    {
        private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Next => Volatile.Read(ref _next).Task;

        public void Pulse() => Interlocked.Exchange(ref _next, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    [GeneratedRegex(@"^Interpose listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningLine();
}
