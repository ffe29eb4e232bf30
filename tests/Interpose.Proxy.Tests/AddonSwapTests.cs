using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// <see cref="ProxyServer.ReplaceAddons"/> (what reloading a script uses): new exchanges run the new list, an
/// exchange already running finishes with the list it started with.
/// </summary>
public sealed class AddonSwapTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_running_exchange_keeps_its_addons_and_new_exchanges_get_the_new_list()
    {
        await using var origin = await Origins.StartPlainAsync();
        var old = new Labeller("old") { Hold = true };
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(old));
        using var first = proxy.CreateClient(pooled: false);
        using var second = proxy.CreateClient(pooled: false);

        var running = first.GetAsync(origin.Url("/headers"));
        await old.Entered.Task.WaitAsync(BoundedRead.Limit);
        proxy.Server.ReplaceAddons([new Labeller("new")]);
        using var after = await second.GetAsync(origin.Url("/headers"));
        old.Release.SetResult();
        using var before = await running.WaitAsync(BoundedRead.Limit);

        Assert.Equal("new", after.Headers.GetValues("X-List").Single());
        Assert.Equal("old", before.Headers.GetValues("X-List").Single());
    }

    [Fact]
    public async Task Replacing_before_start_is_refused()
    {
        await using var server = new ProxyServer(new ProxyOptions());

        Assert.Throws<InvalidOperationException>(() => server.ReplaceAddons([new Labeller("x")]));
    }

    /// <summary>Marks responses with its label; with <see cref="Hold"/>, its request hook waits for <see cref="Release"/>.</summary>
    private sealed class Labeller(string label) : ProxyAddon
    {
        public bool Hold { get; init; }

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (Hold && Entered.TrySetResult())
            {
                await Release.Task.WaitAsync(cancellationToken);
            }
        }

        public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            exchange.Response!.Headers.Set("X-List", label);
            return default;
        }
    }
}
