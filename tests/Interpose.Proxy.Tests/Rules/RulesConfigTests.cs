using System.Text.Json;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Rules;

/// <summary>
/// The rule flags' errors at start, --allow-hosts, and config.json in the configuration directory (keys, precedence
/// of flags, --options, errors naming the key), through the real <c>interpose run</c>.
/// </summary>
public sealed class RulesConfigTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("interpose-rulesconfig-").FullName;
    private readonly List<InterposeProcess> _started = [];

    private string Home => Path.Combine(_dir, "home");

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(Home);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var process in _started)
        {
            foreach (var line in process.StandardError.Concat(process.StandardOutput))
            {
                output.WriteLine(line);
            }

            await process.DisposeAsync();
        }

        Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [InlineData("--map-local", "|x|/nonexistent-of-interpose", "invalid file path: /nonexistent-of-interpose")]
    [InlineData("--map-local", "|", "empty spec")]
    [InlineData("--map-remote", "|a(|b", "invalid regular expression 'a('")]
    [InlineData("--map-remote", "|a", "invalid number of parameters")]
    [InlineData("--modify-headers", "|~q|bad name|x", "invalid header name 'bad name'")]
    [InlineData("--modify-headers", "|~q|X-A|@/nonexistent-of-interpose", "invalid file path")]
    [InlineData("--modify-body", "|~zz|a|b", "invalid filter pattern '~zz'")]
    [InlineData("--block-list", "|~q|999", "invalid HTTP status code '999'")]
    [InlineData("--block-list", "|~q", "invalid number of parameters")]
    [InlineData("--allow-hosts", "(", "is not a valid regular expression")]
    public async Task A_bad_rule_flag_exits_2_naming_the_flag_and_the_problem(string flag, string value, string problem)
    {
        var result = await RunAsync(Home, "run", "--listen", "127.0.0.1:0", flag, value);

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith($"interpose: {flag}: ", result.StandardError, StringComparison.Ordinal);
        Assert.Contains(problem, result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Allow_hosts_and_ignore_hosts_together_exit_2()
    {
        var result = await RunAsync(Home, "run", "--listen", "127.0.0.1:0", "--allow-hosts", "a", "--ignore-hosts", "b");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("cannot be combined", result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Allow_hosts_intercepts_only_the_hosts_it_names()
    {
        await using var origin = await Origins.StartTlsAsync();
        var originRoot = Path.Combine(_dir, "origin-root.pem");
        await File.WriteAllTextAsync(originRoot, TestPki.OriginRoot.ExportCertificatePem());
        var elsewhere = Track(await InterposeProcess.StartAsync(Path.Combine(_dir, "a"), "--allow-hosts", @"^only\.example\.test$", "--upstream-ca", originRoot));
        var here = Track(await InterposeProcess.StartAsync(Path.Combine(_dir, "b"), "--allow-hosts", "^localhost:", "--upstream-ca", originRoot));

        // Not allowed: relayed untouched, so the client sees the origin's own certificate and not a forged one.
        var passedThrough = await CurlAsync(elsewhere, originRoot, origin.Url("/hello"));
        var forgedRefused = await CurlAsync(elsewhere, elsewhere.CaPemPath, origin.Url("/hello"));
        var intercepted = await CurlAsync(here, here.CaPemPath, origin.Url("/hello"));

        Assert.True(passedThrough.ExitCode == 0, passedThrough.StandardError);
        Assert.Equal("hello from origin", passedThrough.StandardOutput);
        Assert.Equal(60, forgedRefused.ExitCode); // curl: the certificate does not chain to the Interpose CA
        Assert.True(intercepted.ExitCode == 0, intercepted.StandardError);
        Assert.Equal("hello from origin", intercepted.StandardOutput);
    }

    [Fact]
    public async Task Config_file_keys_apply_and_flags_win()
    {
        await using var origin = await Origins.StartPlainAsync();
        await File.WriteAllTextAsync(Path.Combine(Home, "config.json"), """
            // rules for this test
            {
              "modify-headers": ["|~q|X-From|config"],  /* replaced by the flag */
              "via": true,
              "block_list": "|~u /blocked|418",
            }
            """);
        var proxy = Track(await InterposeProcess.StartAsync(Home, "--modify-headers", "|~q|X-From|flag"));

        var headers = await CurlAsync(proxy, proxy.CaPemPath, origin.Url("/headers"));
        var blocked = await ProcessResult.RunAsync("curl", ["--silent", "--include", "--proxy", proxy.Url.ToString(), "--noproxy", "", origin.Url("/blocked").ToString()]);

        Assert.Contains("X-From: flag\n", headers.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("X-From: config", headers.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Via: 1.1 interpose\n", headers.StandardOutput, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 418 ", blocked.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("interpose: --intercept: '~zz': invalid filter pattern", "--web", "127.0.0.1:0", "--intercept", "~zz")]
    [InlineData("interpose: --web: '1.2.3.4.5:9' is not HOST:PORT", "--web", "1.2.3.4.5:9")]
    [InlineData("interpose: --otlp: 'nope' is not an http or https URL", "--otlp", "nope")]
    [InlineData("interpose: --metrics: 'nope' is not HOST:PORT", "--metrics", "nope")]
    [InlineData("interpose: --metrics: 0.0.0.0:9464 is not a loopback address", "--metrics", "0.0.0.0:9464")]
    [InlineData("interpose: --max-connections: '-5' is not a number of connections of at least 1", "--max-connections", "-5")]
    [InlineData("interpose: --max-connections-per-client: '0' is not a number", "--max-connections-per-client", "0")]
    [InlineData("interpose: IgnoreHosts (--ignore-hosts) and AllowHosts (--allow-hosts) cannot be combined", "--allow-hosts", "a", "--ignore-hosts", "b")]
    [InlineData("interpose: refusing to listen on 0.0.0.0:0 without proxy authentication", "--listen", "0.0.0.0:0")]
    [InlineData("interpose: --server-replay-extra: '100' is not forward, kill or a status code", "--server-replay-extra", "100")]
    [InlineData("interpose: /nonexistent-of-interpose.db: no such file", "-S", "/nonexistent-of-interpose.db")]
    public async Task Options_refuses_a_value_that_start_refuses(string problem, params string[] args)
    {
        // --options "checks every value as a start would", also those a start reads late: the -S flags (after the CA:
        // the file opened as a flow store, its flows not loaded), --web with --intercept, the exporters, and what the
        // server itself refuses at start (its limits, an open proxy, --allow-hosts with --ignore-hosts).
        var result = await RunAsync(Home, ["run", "--options", .. args]);

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith(problem, result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_accepts_a_non_loopback_metrics_address_with_the_open_proxy_opt_in()
    {
        var result = await RunAsync(Home, "run", "--options", "--metrics", "0.0.0.0:9464", "--allow-open-proxy");

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("  \"metrics\": \"0.0.0.0:9464\",  // command line", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_limit_from_the_config_file_that_start_refuses_exits_2_naming_the_key_before_the_ca_is_created()
    {
        var path = Path.Combine(Home, "config.json");
        await File.WriteAllTextAsync(path, """{ "max_connections": -5 }""");

        var result = await RunAsync(Home, "run", "--listen", "127.0.0.1:0");

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith($"interpose: {path}: key 'max-connections': '-5' is not a number of connections", result.StandardError, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(Home, "interpose-ca.pem")), "the CA was created for a start that was refused");
    }

    [Fact]
    public async Task A_bad_intercept_filter_exits_2_with_one_line_not_a_stack_trace()
    {
        var result = await RunAsync(Home, "run", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0", "--intercept", "~zz");

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("interpose: --intercept: '~zz': invalid filter pattern", result.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_prints_the_effective_options_with_their_source()
    {
        await File.WriteAllTextAsync(Path.Combine(Home, "config.json"), """{ "via": true, "anticache": true, "modify-headers": ["|~q|X-From|config"] }""");

        var result = await RunAsync(Home, "run", "--options", "--modify-headers", "|~q|X-From|flag", "--max-connections", "7");

        Assert.True(result.ExitCode == 0, result.StandardError);
        using var printed = JsonDocument.Parse(result.StandardOutput, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        var options = printed.RootElement;
        Assert.True(options.GetProperty("via").GetBoolean());
        Assert.True(options.GetProperty("anticache").GetBoolean());
        Assert.Equal(["|~q|X-From|flag"], options.GetProperty("modify-headers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(7, options.GetProperty("max-connections").GetInt32());
        Assert.Equal(256, options.GetProperty("max-connections-per-client").GetInt32());
        Assert.Contains("  \"via\": true,  // config.json", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("  \"modify-headers\": [\"|~q|X-From|flag\"],  // command line", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("  \"max-connections-per-client\": 256,  // default", result.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "no-such-flag": 1 }""", "unknown key 'no-such-flag'")]
    [InlineData("""{ "via": "yes" }""", "key 'via': expected true or false")]
    [InlineData("""{ "max-connections": "many" }""", "key 'max-connections': Cannot parse argument 'many'")]
    [InlineData("""{ "log-format": ["text"] }""", "key 'log-format': expected a string or a number")]
    [InlineData("""{ "map-remote": ["|a("] }""", "key 'map-remote': '|a(': invalid number of parameters")]
    [InlineData("""{ "block-list": ["|~q|999"] }""", "key 'block-list': '|~q|999': invalid HTTP status code")]
    [InlineData("""{ "hook-timeout": 5, "hook_timeout": 6 }""", "key 'hook_timeout' is given twice (also as 'hook-timeout')")]
    [InlineData("""{ "via": true, "via": true }""", "key 'via' is given twice")]
    [InlineData("""[1, 2]""", "expected a JSON object")]
    [InlineData("""{ "via": true""", "not valid JSON")]
    public async Task A_bad_config_file_exits_2_naming_the_key(string json, string problem)
    {
        var path = Path.Combine(Home, "config.json");
        await File.WriteAllTextAsync(path, json);

        var result = await RunAsync(Home, "run", "--listen", "127.0.0.1:0");

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("interpose: " + path + ": ", result.StandardError, StringComparison.Ordinal);
        Assert.Contains(problem, result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_config_file_that_cannot_be_read_exits_2_with_one_line()
    {
        // Tests run as root, whom no file mode stops: a read that fails in the kernel stands in for a file the user
        // may not read. /proc/self/mem is the reading process's memory, and reading at offset 0 (never mapped) fails.
        var path = Path.Combine(Home, "config.json");
        File.CreateSymbolicLink(path, "/proc/self/mem");

        var result = await RunAsync(Home, "run", "--listen", "127.0.0.1:0");

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("interpose: " + path + ": cannot be read: ", result.StandardError, StringComparison.Ordinal);
        Assert.Single(result.StandardError.Trim().Split('\n'));
    }

    [Fact]
    public async Task Set_gives_any_key_on_the_command_line_and_wins_over_the_file()
    {
        await File.WriteAllTextAsync(Path.Combine(Home, "config.json"), """{ "via": true, "modify-headers": ["|~q|X-From|config"] }""");

        var result = await RunAsync(Home, "run", "--options", "--set", "via=false", "--set", "modify_headers=|~q|X-A|1", "--set", "modify-headers=|~q|X-B|2", "--set", "max-connections=7");

        Assert.True(result.ExitCode == 0, result.StandardError);
        using var printed = JsonDocument.Parse(result.StandardOutput, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        var options = printed.RootElement;
        Assert.False(options.GetProperty("via").GetBoolean());
        Assert.Equal(["|~q|X-A|1", "|~q|X-B|2"], options.GetProperty("modify-headers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(7, options.GetProperty("max-connections").GetInt32());
        Assert.False(options.TryGetProperty("set", out _));
        Assert.Contains("  \"via\": false,  // command line", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Set_applies_to_the_running_proxy()
    {
        await using var origin = await Origins.StartPlainAsync();
        var proxy = Track(await InterposeProcess.StartAsync(Home, "--set", "block-list=|~u /blocked|418", "--set", "anticomp=true"));

        var blocked = await ProcessResult.RunAsync("curl", ["--silent", "--include", "--proxy", proxy.Url.ToString(), "--noproxy", "", origin.Url("/blocked").ToString()]);
        var headers = await CurlAsync(proxy, proxy.CaPemPath, origin.Url("/headers"));

        Assert.StartsWith("HTTP/1.1 418 ", blocked.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Accept-Encoding: identity\n", headers.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("no-such-flag=1", "--set: unknown key 'no-such-flag'")]
    [InlineData("via", "--set: 'via': expected KEY=VALUE")]
    [InlineData("via=maybe", "--set: key 'via': expected true or false, not 'maybe'")]
    [InlineData("max-connections=many", "--set: key 'max-connections': Cannot parse argument 'many'")]
    [InlineData("block-list=|~q|999", "--block-list: '|~q|999': invalid HTTP status code")]
    [InlineData("stickyauth=~zz", "--stickyauth: '~zz': invalid filter pattern")]
    public async Task A_bad_set_exits_2_naming_the_key(string setting, string problem)
    {
        var result = await RunAsync(Home, "run", "--listen", "127.0.0.1:0", "--set", setting);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("interpose: " + problem, result.StandardError, StringComparison.Ordinal);
    }

    private InterposeProcess Track(InterposeProcess process)
    {
        _started.Add(process);
        return process;
    }

    /// <summary>Runs the command to its end (start-up errors exit at once).</summary>
    private static Task<ProcessResult> RunAsync(string home, params string[] args) =>
        InterposeProcess.NativeCliPath is { } native
            ? ProcessResult.RunAsync(native, ["--home", home, .. args])
            : ProcessResult.RunAsync("dotnet", [InterposeProcess.CliPath, "--home", home, .. args]);

    private static Task<ProcessResult> CurlAsync(InterposeProcess proxy, string cacert, Uri url) =>
        ProcessResult.RunAsync("curl", ["--silent", "--show-error", "--fail", "--proxy", proxy.Url.ToString(), "--noproxy", "", "--cacert", cacert, url.ToString()]);
}
