using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using Interpose.Certificates;

namespace Interpose.Benchmarks;

/// <summary>
/// What a TLS interception costs in certificates: a cache miss (sign a leaf with the shared key and build its
/// SslStream context) against a cache hit (the common case once a host has been seen).
/// </summary>
[MemoryDiagnoser]
public class LeafCertificateBenchmarks
{
    private string _home = string.Empty;
    private CertificateAuthority _authority = null!;
    private LeafCertificateForge _forge = null!;
    private LeafCertificateCache _cache = null!;
    private X509Certificate2Collection _chain = null!;
    private LeafHostName _host;

    [GlobalSetup]
    public void Setup()
    {
        _home = Path.Combine(Path.GetTempPath(), "interpose-bench-" + Guid.NewGuid().ToString("N"));
        _authority = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = _home });
        _forge = new LeafCertificateForge(_authority, CertificateKeyAlgorithm.EcdsaP256, keyPerHost: false, TimeProvider.System);
        _forge.EnsureSharedKey();
        _chain = new X509Certificate2Collection(_authority.PublicCertificate);
        _host = LeafHostName.Parse("www.example.test");
        _cache = new LeafCertificateCache(_authority);
        _cache.GetAsync("www.example.test", CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cache.Dispose();
        _forge.Dispose();
        _authority.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    /// <summary>A miss as the cache pays it (minus the thread-pool hop): sign the leaf, then build its context.</summary>
    [Benchmark]
    public SslStreamCertificateContext ForgeLeaf()
    {
        var leaf = _forge.Forge(_host);
        var context = SslStreamCertificateContext.Create(leaf, _chain, offline: true);
        leaf.Dispose();
        return context;
    }

    /// <summary>Signing alone, to show how the miss splits between signature and chain build.</summary>
    [Benchmark]
    public void SignLeafOnly() => _forge.Forge(_host).Dispose();

    /// <summary>A hit: the context handed to SslStream for a host seen before.</summary>
    [Benchmark(Baseline = true)]
    public ValueTask<SslStreamCertificateContext> CacheHit() => _cache.GetAsync("www.example.test", CancellationToken.None);
}
