using Interpose.Proxy;
using Interpose.Scripting;
using Microsoft.Extensions.Logging;

namespace Interpose.Cli.Tests;

/// <summary>The script host's reload loop, in process: what it does when installing a reload fails.</summary>
public sealed class ScriptHostTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_reload_whose_install_fails_is_logged_and_the_next_save_is_still_reloaded()
    {
        var path = _temp.File("versioned.cs");
        await File.WriteAllTextAsync(path, Script("one"));
        var installs = 0;
        var second = new TaskCompletionSource<IReadOnlyList<ProxyAddon>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var logs = new FirstError();
        using var factory = new LoggerFactory([logs]);
        await using var host = new ScriptHost([path], factory);
        host.Load();
        host.Watch(addons =>
        {
            // The embedder's install (ProxyServer.ReplaceAddons, say) fails the first time.
            if (Interlocked.Increment(ref installs) == 1)
            {
                throw new InvalidOperationException("install failed (test)");
            }

            second.TrySetResult(addons);
        });

        await SaveAsync(path, Script("two"));
        var (eventId, exception) = await logs.Logged.Task.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(505, eventId);
        Assert.IsType<InvalidOperationException>(exception);

        await SaveAsync(path, Script("three"));
        var installed = await second.Task.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("Versioned", Assert.Single(installed).Name);
    }

    /// <summary>Saves as editors that write a new file and rename it over the old one do: the watcher never sees it half written.</summary>
    private static async Task SaveAsync(string path, string text)
    {
        var next = path + ".tmp";
        await File.WriteAllTextAsync(next, text);
        File.Move(next, path, overwrite: true);
    }

    private static string Script(string version) => $$"""
        public sealed class Versioned : ProxyAddon
        {
            public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
            {
                exchange.Response!.Headers.Set("X-Version", "{{version}}");
                return ValueTask.CompletedTask;
            }
        }
        """;

    /// <summary>Completes with the first reload-loop failure the host logs (event 505): its event id and exception.</summary>
    private sealed class FirstError : ILoggerProvider, ILogger
    {
        public TaskCompletionSource<(int EventId, Exception? Exception)> Logged { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            // Only the loop's own failure: a compile error (502) is another matter.
            if (eventId.Id == 505)
            {
                Logged.TrySetResult((eventId.Id, exception));
            }
        }

        public void Dispose()
        {
        }
    }
}
