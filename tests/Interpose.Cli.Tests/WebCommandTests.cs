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
    public async Task Run_web_without_w_writes_no_file_and_sweeps_the_stale_temporary_stores_of_earlier_versions()
    {
        // What an earlier version's run --web left after a SIGKILL: its store file, named after a process that is gone.
        var directory = Path.Combine(Home, "web-tmp");
        Directory.CreateDirectory(directory);
        int gone;
        using (var exited = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("true") { UseShellExecute = false })!)
        {
            await exited.WaitForExitAsync();
            gone = exited.Id;
        }

        var stale = Path.Combine(directory, $"interpose-web-{gone}-{Guid.NewGuid():N}.db");
        foreach (var file in new[] { stale, stale + "-wal", stale + "-shm" })
        {
            await File.WriteAllTextAsync(file, "recorded traffic");
        }

        using var run = CliRun.Start(Home, "run", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0");
        try
        {
            await WaitForWebUiAsync(run);
            Assert.False(File.Exists(stale));
            Assert.False(File.Exists(stale + "-wal"));
            Assert.False(File.Exists(stale + "-shm"));

            // The flows are kept in memory: nothing new on disk, and the emptied directory is gone.
            Assert.False(Directory.Exists(directory));
            Assert.Empty(Directory.EnumerateFiles(Home, "*.db", SearchOption.AllDirectories));
        }
        finally
        {
            run.Kill();
            await run.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task A_replay_from_the_web_UI_of_run_is_recorded_as_a_replay()
    {
        using var process = CliRun.Start(Home, "run", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0");
        try
        {
            var (proxy, web) = await WaitForWebUiAsync(process);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

            // No origin is needed: a request to a closed loopback port is recorded (a 502) and can be replayed.
            int closedPort;
            using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
            {
                listener.Start();
                closedPort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            }

            using (var client = new HttpClient(new HttpClientHandler { Proxy = new System.Net.WebProxy(proxy), UseProxy = true }))
            {
                (await client.GetAsync($"http://127.0.0.1:{closedPort}/gone", timeout.Token)).Dispose();
            }

            using var api = new HttpClient { BaseAddress = web };
            api.DefaultRequestHeaders.Add("X-Interpose-Token", web.Query["?token=".Length..]);
            string id;
            do
            {
                using var list = System.Text.Json.JsonDocument.Parse(await api.GetStringAsync("/api/flows", timeout.Token));
                id = list.RootElement.GetProperty("flows").EnumerateArray().Select(f => f.GetProperty("id").GetString()!).FirstOrDefault() ?? "";
            }
            while (id.Length == 0); // the recorder announces flows in the background; each try is a real request

            (await api.PostAsync($"/api/flows/{id}/replay", null, timeout.Token)).Dispose();
            System.Text.Json.JsonElement[] replays;
            do
            {
                using var list = System.Text.Json.JsonDocument.Parse(await api.GetStringAsync("/api/flows?filter=" + Uri.EscapeDataString("~replayq"), timeout.Token));
                replays = [.. list.RootElement.GetProperty("flows").EnumerateArray().Select(f => f.Clone())];
            }
            while (replays.Length == 0);

            var row = Assert.Single(replays);
            Assert.Equal("request", row.GetProperty("replay").GetString());
            Assert.NotEqual(id, row.GetProperty("id").GetString());
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task The_UI_loaded_through_the_proxy_is_neither_paused_nor_recorded()
    {
        // An intercept filter that matches the UI's own API calls: through the proxy they must still pass.
        using var process = CliRun.Start(Home, "run", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0", "--intercept", "~u /api/");
        try
        {
            var (proxy, web) = await WaitForWebUiAsync(process);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            using var client = new HttpClient(new HttpClientHandler { Proxy = new System.Net.WebProxy(proxy), UseProxy = true });
            client.DefaultRequestHeaders.Add("X-Interpose-Token", web.Query["?token=".Length..]);
            using (var page = await client.GetAsync(web, timeout.Token))
            {
                Assert.Equal(System.Net.HttpStatusCode.OK, page.StatusCode);
            }

            using (var flows = await client.GetAsync(new Uri(web, "/api/flows"), timeout.Token))
            {
                Assert.Equal(System.Net.HttpStatusCode.OK, flows.StatusCode);
            }

            int closedPort;
            using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
            {
                listener.Start();
                closedPort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            }

            (await client.GetAsync($"http://127.0.0.1:{closedPort}/gone", timeout.Token)).Dispose();

            using var api = new HttpClient { BaseAddress = web };
            api.DefaultRequestHeaders.Add("X-Interpose-Token", web.Query["?token=".Length..]);
            string[] urls;
            do
            {
                using var list = System.Text.Json.JsonDocument.Parse(await api.GetStringAsync("/api/flows", timeout.Token));
                urls = [.. list.RootElement.GetProperty("flows").EnumerateArray().Select(f => f.GetProperty("url").GetString()!)];
            }
            while (urls.Length == 0); // the recorder announces flows in the background; each try is a real request

            Assert.Equal([$"http://127.0.0.1:{closedPort}/gone"], urls);
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    /// <summary>Reads the process's standard error until the web UI's address is printed (at most 60 s); returns the
    /// proxy's URL and the UI's.</summary>
    private static async Task<(Uri Proxy, Uri Web)> WaitForWebUiAsync(System.Diagnostics.Process process)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        string? line;
        Uri? proxy = null;
        do
        {
            line = await process.StandardError.ReadLineAsync(timeout.Token);
            if (line is not null && line.StartsWith("Interpose listening on ", StringComparison.Ordinal))
            {
                proxy = new Uri("http://" + line["Interpose listening on ".Length..].Split(',')[0].Trim());
            }
        }
        while (line is not null && !line.StartsWith("Web UI at ", StringComparison.Ordinal));

        Assert.NotNull(line);
        Assert.NotNull(proxy);
        return (proxy, new Uri(line["Web UI at ".Length..]));
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
