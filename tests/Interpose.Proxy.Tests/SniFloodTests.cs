using System.Diagnostics;
using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>A client cycling through thousands of SNI names cannot grow the proxy's memory: the leaf cache is bounded.</summary>
/// <remarks>
/// It measures this process's managed heap, so it runs alone (a collection without parallelization runs after the
/// others): other test classes allocating at the same time made the measurement noisy.
/// </remarks>
[Collection(nameof(SniFloodTests))]
public sealed class SniFloodTests(ITestOutputHelper output)
{
    private const int Capacity = 500;
    private const int Names = 3_000;
    private const int Concurrency = 8;

    /// <summary>Margin for 3,000 names after the first 500: 4 MiB (measured growth without the retired-leaf cap: 7.2 MiB).</summary>
    private const long MaxGrowthBytes = 4L * 1024 * 1024;

    [Fact]
    public async Task Three_thousand_sni_names_keep_the_leaf_cache_and_memory_bounded()
    {
        await using var proxy = await TestProxy.StartAsync(
            output,
            o =>
            {
                o.LeafCacheCapacity = Capacity;

                // On two busy cores a client can take over a second between the 200 and its ClientHello; the proxy
                // would then take it for a server-speaks-first protocol and relay to port 443 (refused here).
                o.Timeouts.ServerFirstWait = TimeSpan.FromMinutes(1);
            },
            LogLevel.Information); // per-leaf Debug lines would pile up on the heap being measured
        var cache = proxy.Server.LeafCache!;
        var maxCount = 0;
        var clock = Stopwatch.StartNew();

        await HandshakeAsync(proxy, 0, Capacity, cache, c => maxCount = Math.Max(maxCount, c));
        var afterFirst = GC.GetTotalMemory(forceFullCollection: true);
        await HandshakeAsync(proxy, Capacity, Names, cache, c => maxCount = Math.Max(maxCount, c));
        var afterAll = GC.GetTotalMemory(forceFullCollection: true);

        output.WriteLine($"{Names} names in {clock.Elapsed.TotalSeconds:0.0} s; cache max {maxCount}, now {cache.Count}; " +
            $"managed heap after {Capacity}: {afterFirst / 1048576.0:0.0} MiB, after {Names}: {afterAll / 1048576.0:0.0} MiB");
        Assert.InRange(maxCount, 1, Capacity);
        Assert.Equal(Capacity, cache.Count);

        // Between 500 and 3,000 names the cache only replaced leaves (at most 500 cached plus 500 retired in their
        // grace period), so the managed heap may not grow by more than a few KiB per cached leaf.
        Assert.InRange(afterAll - afterFirst, long.MinValue, MaxGrowthBytes);
    }

    private static async Task HandshakeAsync(TestProxy proxy, int from, int to, Certificates.LeafCertificateCache cache, Action<int> observe)
    {
        var next = from - 1;
        var gate = new Lock();
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < to)
            {
                var host = $"n{i}.sni-flood.test";
                await using var stream = await RawClient.ConnectAsync(proxy);
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n"));
                await RawOrigin.ReadHeadAsync(stream);
                await using var ssl = new SslStream(stream);
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = host,
                    EnabledSslProtocols = SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null, // the chain is covered elsewhere; this measures the cache
                });
                lock (gate)
                {
                    observe(cache.Count);
                }
            }
        }));
    }
}

/// <summary>Runs <see cref="SniFloodTests"/> with no other test class in parallel.</summary>
[CollectionDefinition(nameof(SniFloodTests), DisableParallelization = true)]
public sealed class SniFloodRunsAlone;
