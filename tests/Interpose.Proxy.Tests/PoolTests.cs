using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>Origin connection reuse under concurrency.</summary>
public sealed class PoolTests(ITestOutputHelper output)
{
    /// <summary>More clients than the old per-origin idle cap (32), as the load benchmark's 64 connections.</summary>
    private const int Clients = 48;

    [Fact]
    public async Task Many_concurrent_clients_of_one_origin_reuse_every_origin_connection_on_the_next_round()
    {
        // The origin holds every response until all requests of the round arrived: Clients origin connections are
        // then busy at once, deterministically.
        var arrived = 0;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = await KestrelOrigin.StartAsync(
            app => app.MapGet("/held", async () =>
            {
                if (Interlocked.Increment(ref arrived) % Clients == 0)
                {
                    release.TrySetResult();
                }

                await Volatile.Read(ref release).Task;
                return "ok";
            }),
            TestPki.Issue(TestPki.OriginRoot, "localhost"));
        var counter = new ConnectionCounter();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(counter));
        var clients = Enumerable.Range(0, Clients).Select(_ => proxy.CreateClient()).ToArray();
        try
        {
            await Task.WhenAll(clients.Select(c => c.GetStringAsync(origin.Url("/held"))));
            var afterFirst = counter.ServerConnections;
            Volatile.Write(ref release, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            await Task.WhenAll(clients.Select(c => c.GetStringAsync(origin.Url("/held"))));

            Assert.Equal(Clients, afterFirst);
            Assert.Equal(Clients, counter.ServerConnections);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }
}
