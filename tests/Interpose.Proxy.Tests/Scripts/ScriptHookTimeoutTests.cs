using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Scripts;

/// <summary>
/// A script whose hook hangs is bounded by the hook timeout, through the real <c>interpose run -s</c>: the exchange
/// fails with a 502 naming the script's addon and the hook, the next exchange is served. The command's clock is the
/// system's, so the timeout is set small (<c>--set hook_timeout=0.5</c>, the config key of <c>--hook-timeout</c>) and
/// the test awaits the 502; nothing sleeps.
/// </summary>
public sealed class ScriptHookTimeoutTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("interpose-script-hang-").FullName;

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
}
