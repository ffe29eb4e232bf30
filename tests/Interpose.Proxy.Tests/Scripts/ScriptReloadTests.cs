using System.Net.Sockets;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Scripts;

/// <summary>
/// Loading scripts through the real <c>interpose run -s</c>: a compile error at start exits 2 naming file, line and
/// column; saving reloads without dropping the client's connection; a no-op save is not recompiled; a compile error
/// on reload keeps the previous version running; a hook that hangs is bounded by the hook timeout.
/// </summary>
public sealed class ScriptReloadTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("interpose-script-reload-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_script_hook_that_hangs_fails_its_exchange_with_a_502_naming_it_at_the_hook_timeout()
    {
        await using var origin = await KestrelOrigin.StartAsync(app => app.MapGet("/hello", () => "from origin"));
        var script = Path.Combine(_dir, "hang.cs");
        await File.WriteAllTextAsync(script, """
            public sealed class Hang : ProxyAddon
            {
                // Ignores its token on purpose: only the proxy's bound can end this exchange.
                private static readonly TaskCompletionSource Never = new();

                public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken) =>
                    exchange.Request.Path == "/hang" ? new ValueTask(Never.Task) : default;
            }
            """);
        // The command's clock is the system's: the bound is set small, through --set and the config key of
        // --hook-timeout, and the test awaits the 502; nothing sleeps.
        await using var proxy = await InterposeProcess.StartAsync(Path.Combine(_dir, "home"), "-s", script, "--set", "hook_timeout=0.5");
        try
        {
            var hung = await proxy.CurlAsync(origin.Url("/hang").ToString(), "--http1.1");
            var next = await proxy.CurlAsync(origin.Url("/hello").ToString(), "--http1.1");

            Assert.StartsWith("HTTP/1.1 502 ", hung.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("addon Hang failed in RequestAsync: did not complete within 0.5 s", hung.StandardOutput, StringComparison.Ordinal);
            Assert.StartsWith("HTTP/1.1 200 ", next.StandardOutput, StringComparison.Ordinal);
            await proxy.WaitForLineAsync(l => l.Contains("Addon Hang did not complete RequestAsync within 0.5 s", StringComparison.Ordinal));
        }
        finally
        {
            proxy.WriteOutputTo(output);
        }
    }

    [Fact]
    public async Task A_compile_error_at_start_exits_2_with_file_line_and_column()
    {
        var script = Path.Combine(_dir, "broken.cs");
        await File.WriteAllTextAsync(script, "public sealed class Broken : ProxyAddon\n{\n    int x = ;\n}\n");

        var result = await RunToExitAsync("--home", Path.Combine(_dir, "home"), "run", "--listen", "127.0.0.1:0", "-s", script);

        output.WriteLine(result.StandardError);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"interpose: {script}(3,13): error CS1525: Invalid expression term ';'", result.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("listening", result.StandardError, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("public sealed class NotAnAddon { }", "defines no addon")]
    [InlineData("#:package Humanizer@2.14.1\npublic sealed class A : ProxyAddon { }", "(1,1): error: '#:package Humanizer@2.14.1': scripts cannot reference packages")]
    public async Task A_script_without_an_addon_or_with_a_package_directive_is_refused_at_start(string text, string expected)
    {
        var script = Path.Combine(_dir, "refused.cs");
        await File.WriteAllTextAsync(script, text);

        var result = await RunToExitAsync("--home", Path.Combine(_dir, "home"), "run", "--listen", "127.0.0.1:0", "-s", script);

        output.WriteLine(result.StandardError);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Saving_reloads_for_new_exchanges_on_the_same_connection_and_a_compile_error_keeps_the_old_version()
    {
        // A Content-Length body (not chunked), so that the head and two bytes are the whole response.
        await using var origin = await KestrelOrigin.StartAsync(app => app.MapGet("/v", async (HttpContext context) =>
        {
            context.Response.ContentLength = 2;
            await context.Response.WriteAsync("ok");
        }));
        var script = Path.Combine(_dir, "version.cs");
        await File.WriteAllTextAsync(script, Version("1"));
        await using var proxy = await InterposeProcess.StartAsync(Path.Combine(_dir, "home"), "--verbose", "-s", script);
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", proxy.Port);
            var stream = client.GetStream();
            var url = origin.Url("/v");

            Assert.Equal("1", await VersionHeaderAsync(stream, url));

            // A changed file: compiled again, used from the next exchange, on the connection that is still open.
            await File.WriteAllTextAsync(script, Version("2"));
            await proxy.WaitForLineAsync(l => l.Contains($"Script {script} reloaded: Versioned", StringComparison.Ordinal));
            Assert.Equal("2", await VersionHeaderAsync(stream, url));

            // The same text again: not recompiled.
            await File.WriteAllTextAsync(script, Version("2"));
            await proxy.WaitForLineAsync(l => l.Contains($"Script {script} saved without a change", StringComparison.Ordinal));

            // A compile error: reported with file, line and column; the previous version keeps answering.
            await File.WriteAllTextAsync(script, Version("3").Replace("Set(", "Set(,", StringComparison.Ordinal));
            await proxy.WaitForLineAsync(l => l.Contains($"{script}(5,", StringComparison.Ordinal) && l.Contains("error CS", StringComparison.Ordinal));
            await proxy.WaitForLineAsync(l => l.Contains($"Script {script} not reloaded, the previous version keeps running", StringComparison.Ordinal));
            Assert.Equal("2", await VersionHeaderAsync(stream, url));
        }
        finally
        {
            proxy.WriteOutputTo(output);
        }
    }

    [Fact]
    public async Task Saving_the_running_text_again_after_a_failed_save_is_no_change()
    {
        // A save that failed to compile, then the running text again (an editor's undo): nothing to recompile. The
        // watcher may also read a file half-written (truncated, not yet written): that text fails, and must not count
        // as the running one either.
        var script = Path.Combine(_dir, "version.cs");
        await File.WriteAllTextAsync(script, Version("1"));
        await using var proxy = await InterposeProcess.StartAsync(Path.Combine(_dir, "home"), "--verbose", "-s", script);
        try
        {
            await File.WriteAllTextAsync(script, Version("2").Replace("Set(", "Set(,", StringComparison.Ordinal));
            await proxy.WaitForLineAsync(l => l.Contains($"{script}(5,", StringComparison.Ordinal) && l.Contains("error CS", StringComparison.Ordinal));

            await File.WriteAllTextAsync(script, Version("1"));
            await proxy.WaitForLineAsync(l => l.Contains($"Script {script} saved without a change", StringComparison.Ordinal));
            Assert.DoesNotContain(proxy.StandardError.Concat(proxy.StandardOutput), l => l.Contains("reloaded: Versioned", StringComparison.Ordinal));
        }
        finally
        {
            proxy.WriteOutputTo(output);
        }
    }

    private static string Version(string version) => $$"""
        public sealed class Versioned : ProxyAddon
        {
            public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
            {
                exchange.Response!.Headers.Set("X-Version", "{{version}}");
                return default;
            }
        }
        """;

    /// <summary>One GET through the proxy on an open connection; the X-Version header of its answer.</summary>
    private static async Task<string?> VersionHeaderAsync(NetworkStream stream, Uri url)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {url} HTTP/1.1\r\nHost: {url.Authority}\r\n\r\n"));
        var received = new StringBuilder();
        var buffer = new byte[4096];
        while (true)
        {
            var text = received.ToString();
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0 && text.Length >= end + 4 + 2)
            {
                // The origin answers "ok" with a Content-Length: the head and two bytes are the whole response.
                Assert.StartsWith("HTTP/1.1 200 ", text, StringComparison.Ordinal);
                return text[..end].Split("\r\n").FirstOrDefault(l => l.StartsWith("X-Version: ", StringComparison.Ordinal))?["X-Version: ".Length..];
            }

            var read = await stream.ReadBoundedAsync(buffer);
            Assert.True(read > 0, "the proxy closed the connection: " + text);
            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
    }

    private static Task<ProcessResult> RunToExitAsync(params string[] args) =>
        InterposeProcess.NativeCliPath is { } native
            ? ProcessResult.RunAsync(native, args, new Dictionary<string, string>())
            : ProcessResult.RunAsync("dotnet", [InterposeProcess.CliPath, .. args], new Dictionary<string, string>());
}
