using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Interpose.Certificates.Tests;

public sealed class LeafCertificateCacheTests : IDisposable
{
    private readonly TempDirectory _home = new();
    private readonly ManualTimeProvider _time = new(TimeProvider.System.GetUtcNow());
    private readonly CertificateAuthority _ca;

    public LeafCertificateCacheTests()
    {
        _ca = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home.Path, TimeProvider = _time });
    }

    public void Dispose()
    {
        _ca.Dispose();
        _home.Dispose();
    }

    [Fact]
    public async Task Prefetch_starts_the_forge_that_the_next_lookup_of_the_name_takes()
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time });

        cache.Prefetch("prefetched.example.test");
        cache.Prefetch("PREFETCHED.example.test");
        var context = await cache.GetAsync("prefetched.example.test", CancellationToken.None);

        Assert.Equal("CN=prefetched.example.test", context.TargetCertificate.Subject);
        Assert.Equal(1, cache.ForgeCount);
        Assert.Equal(1, cache.Misses);
        Assert.Equal(1, cache.Hits);
    }

    [Fact]
    public void Prefetch_of_a_name_that_cannot_have_a_leaf_does_nothing()
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time });

        cache.Prefetch("*.example.test");
        cache.Prefetch("");

        Assert.Equal(0, cache.Count);
        Assert.Equal(0, cache.Misses);
    }

    [Fact]
    public async Task A_hit_returns_the_same_context_and_names_are_case_insensitive()
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time });

        var first = await cache.GetAsync("www.example.test", CancellationToken.None);
        var second = await cache.GetAsync("WWW.Example.Test.", CancellationToken.None);
        var v6 = await cache.GetAsync("::1", CancellationToken.None);
        var bracketed = await cache.GetAsync("[::1]", CancellationToken.None);

        Assert.Same(first, second);
        Assert.Same(v6, bracketed);
        Assert.Equal(2, cache.Count);
        Assert.Equal(2, cache.ForgeCount);
        Assert.Equal(2, cache.Misses);
        Assert.Equal(2, cache.Hits);
        Assert.Equal("CN=www.example.test", first.TargetCertificate.Subject);
    }

    [Fact]
    public async Task A_hit_does_not_allocate()
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time });
        var expected = await cache.GetAsync("hot.example.test", CancellationToken.None);
        for (var i = 0; i < 100; i++)
        {
            Assert.True(CompletedSynchronously(cache.GetAsync("hot.example.test", CancellationToken.None)));
        }

        const int Hits = 1000;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Hits; i++)
        {
            Assert.True(CompletedSynchronously(cache.GetAsync("hot.example.test", CancellationToken.None)));
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // Habit 12: the accept path does not allocate; a few bytes of slack allow for runtime bookkeeping.
        Assert.InRange(allocated, 0, 1024);
        Assert.Same(expected, await cache.GetAsync("hot.example.test", CancellationToken.None));
    }

    [Fact]
    public async Task The_cache_never_exceeds_its_bound_while_forging_5000_names()
    {
        const int Capacity = 100;
        const int Names = 5000;
        const int Batch = 50;
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { Capacity = Capacity, TimeProvider = _time });
        var maxSeen = 0;

        for (var start = 0; start < Names; start += Batch)
        {
            var batch = Enumerable.Range(start, Batch).Select(i => cache.GetAsync($"host{i}.example.test", CancellationToken.None).AsTask()).ToArray();

            // Count includes forges still in flight, so it is checked while the batch runs, not only after it.
            maxSeen = Math.Max(maxSeen, cache.Count);
            await Task.WhenAll(batch);
            maxSeen = Math.Max(maxSeen, cache.Count);
        }

        Assert.InRange(maxSeen, 1, Capacity);
        Assert.Equal(Capacity, cache.Count);
        Assert.Equal(Names, cache.ForgeCount);
        Assert.Equal(Names - Capacity, cache.Evictions);

        // The most recent names are the ones kept.
        var before = cache.ForgeCount;
        await cache.GetAsync($"host{Names - 1}.example.test", CancellationToken.None);
        Assert.Equal(before, cache.ForgeCount);
    }

    [Fact]
    public async Task One_hundred_concurrent_requests_for_one_name_forge_once()
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time });
        using var go = new ManualResetEventSlim();

        var requests = Enumerable.Range(0, 100).Select(_ => Task.Run(async () =>
        {
            go.Wait();
            return await cache.GetAsync("busy.example.test", CancellationToken.None);
        })).ToArray();
        go.Set();
        var contexts = await Task.WhenAll(requests);

        Assert.Equal(1, cache.ForgeCount);
        Assert.Equal(1, cache.Misses);
        Assert.Equal(99, cache.Hits);
        Assert.All(contexts, c => Assert.Same(contexts[0], c));
    }

    [Fact]
    public async Task Leaves_evicted_while_still_forging_reach_their_callers_and_then_retire()
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { Capacity = 1, TimeProvider = _time });

        // Ten misses in a row: each evicts the previous entry, most of them before their forge has finished.
        var requests = Enumerable.Range(0, 10).Select(i => cache.GetAsync($"burst{i}.example.test", CancellationToken.None).AsTask()).ToArray();
        var contexts = await Task.WhenAll(requests);

        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"CN=burst{i}.example.test"), contexts.Select(c => c.TargetCertificate.Subject));
        Assert.Equal(1, cache.Count);
        Assert.Equal(9, cache.Evictions);
        Assert.Equal(9, cache.RetiredCount);
        Assert.All(contexts, c => Assert.NotEqual(IntPtr.Zero, c.TargetCertificate.Handle));
    }

    [Fact]
    public async Task A_leaf_is_forged_again_when_less_than_30_days_are_left()
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time });
        var original = await cache.GetAsync("refresh.example.test", CancellationToken.None);

        _time.Advance(TimeSpan.FromDays(365 - 31));
        Assert.Same(original, await cache.GetAsync("refresh.example.test", CancellationToken.None));

        _time.Advance(TimeSpan.FromDays(2));
        var refreshed = await cache.GetAsync("refresh.example.test", CancellationToken.None);

        Assert.NotSame(original, refreshed);
        Assert.Equal(2, cache.ForgeCount);
        Assert.Equal(1, cache.Count);
        Assert.Equal(1, cache.RetiredCount);
        Assert.True(refreshed.TargetCertificate.NotAfter > original.TargetCertificate.NotAfter);
    }

    [Fact]
    public async Task Evicted_leaves_stay_usable_for_the_grace_period_then_are_disposed()
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { Capacity = 1, TimeProvider = _time });
        var a = await cache.GetAsync("a.example.test", CancellationToken.None);
        await cache.GetAsync("b.example.test", CancellationToken.None);

        Assert.Equal(1, cache.Count);
        Assert.Equal(1, cache.RetiredCount);
        Assert.NotEqual(IntPtr.Zero, a.TargetCertificate.Handle);

        _time.Advance(LeafCertificateCache.RetiredLeafGracePeriod);
        await cache.GetAsync("c.example.test", CancellationToken.None);

        Assert.Equal(IntPtr.Zero, a.TargetCertificate.Handle);
        Assert.Equal(1, cache.RetiredCount);
        Assert.Equal(2, cache.Evictions);
    }

    [Fact]
    public async Task A_failed_forge_is_not_cached()
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time });
        var now = _time.GetUtcNow();

        _time.Set(TestCertificates.Utc(_ca.Certificate.NotAfter).AddDays(1));
        await Assert.ThrowsAsync<CertificateException>(async () => await cache.GetAsync("fail.example.test", CancellationToken.None));
        Assert.Equal(0, cache.Count);

        _time.Set(now);
        var context = await cache.GetAsync("fail.example.test", CancellationToken.None);

        Assert.Equal("CN=fail.example.test", context.TargetCertificate.Subject);
        Assert.Equal(1, cache.Count);
        Assert.Equal(2, cache.Misses);
    }

    [Theory]
    [InlineData("")]
    [InlineData("*.example.test")]
    [InlineData("bad name.example.test")]
    public async Task Invalid_names_throw_and_forge_nothing(string name)
    {
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time });

        await Assert.ThrowsAsync<CertificateException>(async () => await cache.GetAsync(name, CancellationToken.None));

        Assert.Equal(0, cache.Count);
        Assert.Equal(0, cache.ForgeCount);
    }

    [Fact]
    public void Options_out_of_range_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { Capacity = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { RefreshBefore = TimeSpan.FromDays(400) }));
        Assert.Equal(1000, LeafCertificateCacheOptions.DefaultCapacity);
    }

    [Fact]
    public async Task A_disposed_cache_refuses_requests_and_disposes_its_leaves()
    {
        var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time });
        var context = await cache.GetAsync("dispose.example.test", CancellationToken.None);

        cache.Dispose();

        Assert.Equal(IntPtr.Zero, context.TargetCertificate.Handle);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await cache.GetAsync("dispose.example.test", CancellationToken.None));
    }

    [Fact]
    public async Task Each_forged_leaf_is_logged_at_debug_with_host_and_fingerprint()
    {
        var logger = new CollectingLogger();
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { TimeProvider = _time }, logger);

        var context = await cache.GetAsync("logged.example.test", CancellationToken.None);
        await cache.GetAsync("logged.example.test", CancellationToken.None);

        var entry = Assert.Single(logger.Entries);
        Assert.Equal(LogLevel.Debug, entry.Level);
        Assert.Equal(1010, entry.EventId.Id);
        Assert.Contains("logged.example.test", entry.Message, StringComparison.Ordinal);
        Assert.Contains(CertificateFingerprint.Sha256(context.TargetCertificate), entry.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(CertificateKeyAlgorithm.EcdsaP256, "tls.example.test")]
    [InlineData(CertificateKeyAlgorithm.EcdsaP256, "127.0.0.1")]
    [InlineData(CertificateKeyAlgorithm.Rsa3072, "rsa.example.test")]
    public async Task An_SslStream_handshake_over_loopback_succeeds_with_the_cached_context(CertificateKeyAlgorithm leafKey, string host)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var cache = new LeafCertificateCache(_ca, new LeafCertificateCacheOptions { KeyAlgorithm = leafKey });
        await cache.WarmUpAsync(timeout.Token);

        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var server = Task.Run(async () =>
            {
                using var accepted = await listener.AcceptTcpClientAsync(timeout.Token);
                await using var tls = new SslStream(accepted.GetStream());

                // As the proxy will: pick the leaf from the ClientHello's SNI, or the CONNECT target without one.
                await tls.AuthenticateAsServerAsync(
                    async (stream, hello, state, ct) => new SslServerAuthenticationOptions
                    {
                        ServerCertificateContext = await cache.GetAsync(string.IsNullOrEmpty(hello.ServerName) ? host : hello.ServerName, ct),
                    },
                    null,
                    timeout.Token);
                await tls.WriteAsync("ok"u8.ToArray(), timeout.Token);
                await tls.ShutdownAsync();
            });

            X509Certificate2? seen = null;
            var chainValid = false;
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            await using var clientTls = new SslStream(client.GetStream());
            await clientTls.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions
                {
                    TargetHost = host,
                    EnabledSslProtocols = SslProtocols.None,
                    CertificateChainPolicy = TrustOnly(_ca.Certificate),
                    RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
                    {
                        seen = certificate is null ? null : new X509Certificate2(certificate);
                        chainValid = errors == SslPolicyErrors.None && chain is not null && chain.ChainElements.Count == 2;
                        return errors == SslPolicyErrors.None;
                    },
                },
                timeout.Token);

            var buffer = new byte[2];
            await clientTls.ReadExactlyAsync(buffer, timeout.Token);
            await server;

            Assert.Equal("ok"u8.ToArray(), buffer);
            Assert.True(chainValid);
            Assert.NotNull(seen);
            Assert.Equal(_ca.Certificate.SubjectName.RawData, seen.IssuerName.RawData);
            Assert.Equal($"CN={host}", seen.Subject);
            var cached = await cache.GetAsync(host, timeout.Token);
            Assert.Equal(cached.TargetCertificate.RawData, seen.RawData);
            Assert.Equal(1, cache.ForgeCount);
        }
        finally
        {
            listener.Stop();
        }
    }

    private static bool CompletedSynchronously(ValueTask<SslStreamCertificateContext> pending) =>
        pending.IsCompletedSuccessfully && pending.Result is not null;

    private static X509ChainPolicy TrustOnly(X509Certificate2 root)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.Add(root);
        return policy;
    }
}
