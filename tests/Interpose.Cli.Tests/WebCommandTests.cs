using System.Net.Http;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Store;

namespace Interpose.Cli.Tests;

/// <summary><c>run --web</c>, <c>--intercept</c> and <c>interpose web FILE</c> as a user meets them.</summary>
public sealed class WebCommandTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    private string Home => _temp.File("home");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_file_that_is_not_a_flow_store_is_a_one_line_error_at_start()
    {
        var file = _temp.File("notes.txt");
        await File.WriteAllTextAsync(file, "not a database");
        var run = await CliRun.RunAsync(Home, "web", file, "--web", "127.0.0.1:0");
        Assert.Equal(2, run.ExitCode);
        Assert.Single(run.StderrLines);
        Assert.StartsWith("interpose: ", run.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "run", "--intercept", "~q" }, "--intercept needs --web")]
    [InlineData(new[] { "run", "--web", "10.1.2.3:8081" }, "--allow-open-proxy")]
    [InlineData(new[] { "run", "--web", "nonsense" }, "--web: 'nonsense' is not HOST:PORT")]
    public async Task Bad_web_options_exit_2_before_anything_listens(string[] arguments, string expected)
    {
        var run = await CliRun.RunAsync(Home, arguments);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(expected, run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_temporary_store_of_a_SIGKILLed_run_web_is_swept_at_the_next_start_from_an_owner_only_directory()
    {
        var directory = Path.Combine(Home, "web-tmp");
        string killed;
        using (var first = CliRun.Start(Home, "run", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0"))
        {
            await WaitForWebUiAsync(first);
            killed = Assert.Single(Directory.GetFiles(directory, "*.db"));
            first.Kill(); // SIGKILL: no chance to delete its file
            await first.WaitForExitAsync();
        }

        Assert.True(File.Exists(killed));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
        }

        using var second = CliRun.Start(Home, "run", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0");
        try
        {
            await WaitForWebUiAsync(second);
            Assert.False(File.Exists(killed));
            Assert.False(File.Exists(killed + "-wal"));
            Assert.False(File.Exists(killed + "-shm"));
            Assert.NotEqual(killed, Assert.Single(Directory.GetFiles(directory, "*.db")));
        }
        finally
        {
            second.Kill();
            await second.WaitForExitAsync();
        }
    }

    /// <summary>Reads the process's standard error until the web UI's address is printed (at most 60 s).</summary>
    private static async Task WaitForWebUiAsync(System.Diagnostics.Process process)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        string? line;
        do
        {
            line = await process.StandardError.ReadLineAsync(timeout.Token);
        }
        while (line is not null && !line.StartsWith("Web UI at ", StringComparison.Ordinal));

        Assert.NotNull(line);
    }

    [Fact]
    public async Task Web_FILE_serves_the_saved_flows_read_only_at_the_printed_url()
    {
        var file = _temp.File("flows.db");
        await using (var store = SqliteFlowStore.Open(file))
        {
            await store.AppendAsync([new HttpFlow
            {
                Id = Guid.NewGuid(), StartedAt = DateTimeOffset.UnixEpoch, ClientHttpVersion = "HTTP/1.1",
                Request = new FlowRequest { Method = "GET", Scheme = "http", Host = "saved.test", Port = 80, Path = "/saved", HttpVersion = "HTTP/1.1", Headers = new HttpHeaders() },
            }]);
        }

        using var process = CliRun.Start(Home, "web", file, "--web", "127.0.0.1:0");
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            string? line;
            do
            {
                line = await process.StandardError.ReadLineAsync(timeout.Token);
            }
            while (line is not null && !line.StartsWith("Web UI (read-only) at ", StringComparison.Ordinal));

            Assert.NotNull(line);
            var url = new Uri(line["Web UI (read-only) at ".Length..]);
            var token = url.Query["?token=".Length..];
            using var client = new HttpClient { BaseAddress = url };
            client.DefaultRequestHeaders.Add("X-Interpose-Token", token);
            Assert.Contains("http://saved.test/saved", await client.GetStringAsync("/api/flows", timeout.Token), StringComparison.Ordinal);
            using var delete = await client.PostAsync("/api/clear", null, timeout.Token);
            Assert.Equal(System.Net.HttpStatusCode.Forbidden, delete.StatusCode);
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }
}
