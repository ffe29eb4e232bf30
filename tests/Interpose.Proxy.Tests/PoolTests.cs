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
        // Clients origin connections are busy at once, deterministically.
        var rounds = new HeldRounds(Clients);
        await using var origin = await rounds.StartOriginAsync();
        var counter = new ConnectionCounter();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(counter));
        var clients = Enumerable.Range(0, Clients).Select(_ => proxy.CreateClient()).ToArray();
        try
        {
            await Task.WhenAll(clients.Select(c => c.GetStringAsync(origin.Url("/held"))));
            var afterFirst = counter.ServerConnections;
            rounds.Next();
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

    [Fact]
    public async Task An_origin_keeps_at_most_its_idle_cap_of_connections_round_after_round()
    {
        const int Concurrent = 4;
        const int Cap = 2;
        var rounds = new HeldRounds(Concurrent);
        await using var origin = await rounds.StartOriginAsync();
        var counter = new ConnectionCounter();

        // The pool takes a connection back before the exchange's Done hooks run: once a round's four hooks ran, its
        // connections are in the pool or closed.
        var done = 0;
        var roundDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var hooks = new Hooks
        {
            OnDone = _ =>
            {
                if (Interlocked.Increment(ref done) % Concurrent == 0)
                {
                    Volatile.Read(ref roundDone).TrySetResult();
                }
            },
        };
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Addons.Add(counter);
            o.Addons.Add(hooks);
            o.MaxIdleConnectionsPerOrigin = Cap;
        });
        var clients = Enumerable.Range(0, Concurrent).Select(_ => proxy.CreateClient()).ToArray();
        try
        {
            List<int> opened = [];
            for (var round = 0; round < 3; round++)
            {
                await Task.WhenAll(clients.Select(c => c.GetStringAsync(origin.Url("/held"))));
                await Volatile.Read(ref roundDone).Task;
                opened.Add(counter.ServerConnections);
                rounds.Next();
                Volatile.Write(ref roundDone, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            }

            // Each round after the first finds the cap's two connections idle and opens two more; the other two of
            // every round are closed when given back.
            Assert.Equal([Concurrent, Concurrent + Cap, Concurrent + 2 * Cap], opened);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>
    /// An origin that holds every response of a round until all <paramref name="perRound"/> requests of the round
    /// arrived, so that that many origin connections are busy at once; <see cref="Next"/> before each later round.
    /// </summary>
    private sealed class HeldRounds(int perRound)
    {
        private int _arrived;
        private TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Next() => Volatile.Write(ref _release, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        public Task<KestrelOrigin> StartOriginAsync() => KestrelOrigin.StartAsync(
            app => app.MapGet("/held", async () =>
            {
                var release = Volatile.Read(ref _release);
                if (Interlocked.Increment(ref _arrived) % perRound == 0)
                {
                    release.TrySetResult();
                }

                await release.Task;
                return "ok";
            }),
            TestPki.Issue(TestPki.OriginRoot, "localhost"));
    }
}
