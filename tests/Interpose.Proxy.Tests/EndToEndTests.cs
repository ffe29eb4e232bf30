using System.Buffers.Binary;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>The real <c>interpose run</c> process, driven by real clients.</summary>
public sealed class EndToEndTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Peak RSS allowed for the proxy process while 1 GiB flows each way: far below the body size, so bodies stream.</summary>
    private const long MaxProxyPeakRss = 200L * 1024 * 1024;

    private const long OneGiB = 1024L * 1024 * 1024;

    private readonly string _home = Directory.CreateTempSubdirectory("interpose-e2e-").FullName;

    private string OriginRootPem
    {
        get
        {
            var path = Path.Combine(_home, "origin-root.pem");
            if (!File.Exists(path))
            {
                File.WriteAllText(path, TestPki.OriginRoot.ExportCertificatePem());
            }

            return path;
        }
    }

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public async Task Run_serves_curl_over_http_and_https_prints_flows_and_stops_cleanly_on_sigterm()
    {
        await using var plain = await Origins.StartPlainAsync();
        await using var tls = await Origins.StartTlsAsync();
        await using var proxy = await InterposeProcess.StartAsync(Path.Combine(_home, "home"), "--upstream-ca", OriginRootPem);

        var http = await Curl(proxy, plain.Url("/hello"));
        var https = await Curl(proxy, tls.Url("/hello"));
        var exit = await proxy.TerminateAsync();

        Assert.True(http.ExitCode == 0, http.StandardError);
        Assert.True(https.ExitCode == 0, https.StandardError);
        Assert.Equal("hello from origin", http.StandardOutput);
        Assert.Equal("hello from origin", https.StandardOutput);
        Assert.Equal(0, exit);
        Assert.Contains(proxy.StandardOutput, l => l.Contains($"GET http://localhost:{plain.Port}/hello -> 200", StringComparison.Ordinal));
        Assert.Contains(proxy.StandardOutput, l => l.Contains($"GET https://localhost:{tls.Port}/hello -> 200", StringComparison.Ordinal));
        Assert.Contains(proxy.StandardError, l => l.Contains("interpose-ca.pem", StringComparison.Ordinal));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Run_with_your_own_ca_forges_leaves_from_it()
    {
        await using var origin = await Origins.StartTlsAsync();
        using var own = TestPki.CreateRoot("My Team CA");
        var certPath = Path.Combine(_home, "team-ca.pem");
        var keyPath = Path.Combine(_home, "team-ca.key");
        await File.WriteAllTextAsync(certPath, own.ExportCertificatePem());
        using (var key = own.GetECDsaPrivateKey()!)
        {
            await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());
        }

        File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await using var proxy = await InterposeProcess.StartAsync(Path.Combine(_home, "home"), "--upstream-ca", OriginRootPem, "--ca-cert", certPath, "--ca-key", keyPath);

        var trustsOwn = await ProcessResult.RunAsync("curl", ["--silent", "--show-error", "--fail", "--proxy", proxy.Url.ToString(), "--noproxy", "", "--cacert", certPath, OriginUrl(origin)]);

        Assert.True(trustsOwn.ExitCode == 0, trustsOwn.StandardError);
        Assert.Equal("hello from origin", trustsOwn.StandardOutput);
        Assert.False(File.Exists(proxy.CaPemPath)); // the install's CA was not created
        Assert.Equal(0, await proxy.TerminateAsync());

        static string OriginUrl(KestrelOrigin o) => o.Url("/hello").ToString();
    }

    [Fact]
    public async Task One_GiB_each_way_through_interception_arrives_intact_with_flat_memory()
    {
        string? uploadHash = null;
        void Map(WebApplication app)
        {
            app.MapPut("/upload", async (HttpContext context) =>
            {
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[64 * 1024];
                int n;
                while ((n = await context.Request.Body.ReadAsync(buffer)) > 0)
                {
                    sha.AppendData(buffer, 0, n);
                }

                uploadHash = Convert.ToHexString(sha.GetHashAndReset());
                return uploadHash;
            });
            app.MapGet("/download", async (HttpContext context) =>
            {
                context.Response.ContentLength = OneGiB;
                await foreach (var block in PatternStream.Blocks(OneGiB))
                {
                    await context.Response.Body.WriteAsync(block);
                }
            });
        }

        await using var origin = await KestrelOrigin.StartAsync(Map, TestPki.Issue(TestPki.OriginRoot, "localhost"));
        await using var proxy = await InterposeProcess.StartAsync(Path.Combine(_home, "home"), "--upstream-ca", OriginRootPem, "--verbose");
        try
        {
            await TransferAsync(origin, proxy, () => uploadHash);
        }
        finally
        {
            // What the proxy said, to explain a failure.
            foreach (var line in proxy.StandardError.Concat(proxy.StandardOutput).Where(l => !l.StartsWith("debug: Forged", StringComparison.Ordinal)))
            {
                output.WriteLine(line);
            }
        }
    }

    private async Task TransferAsync(KestrelOrigin origin, InterposeProcess proxy, Func<string?> uploadHash)
    {
        using var ca = X509CertificateLoader.LoadCertificateFromFile(proxy.CaPemPath);
        using var client = new HttpClient(new SocketsHttpHandler
        {
            Proxy = new WebProxy(proxy.Url),
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, e) => TestProxy.ChainsTo(c, ca, e) },
        }) { Timeout = TimeSpan.FromMinutes(5) };

        // Warm up (CA loaded, leaf forged, connections open) before the baseline memory reading.
        using (var warmup = await client.PutAsync(origin.Url("/upload"), new ByteArrayContent("hello"u8.ToArray())))
        {
            Assert.Equal(Convert.ToHexString(SHA256.HashData("hello"u8)), await warmup.Content.ReadAsStringAsync());
        }

        var before = proxy.Memory();

        // Upload.
        var expected = PatternStream.Sha256(OneGiB);
        using (var upload = await client.PutAsync(origin.Url("/upload"), new StreamContent(new PatternStream(OneGiB), 64 * 1024)))
        {
            upload.EnsureSuccessStatusCode();
            Assert.Equal(expected, await upload.Content.ReadAsStringAsync());
            Assert.Equal(expected, uploadHash());
        }

        // Download.
        using (var download = await client.GetAsync(origin.Url("/download"), HttpCompletionOption.ResponseHeadersRead))
        {
            download.EnsureSuccessStatusCode();
            await using var body = await download.Content.ReadAsStreamAsync();
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[64 * 1024];
            long total = 0;
            int n;
            while ((n = await body.ReadAsync(buffer)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                total += n;
            }

            Assert.Equal(OneGiB, total);
            Assert.Equal(expected, Convert.ToHexString(sha.GetHashAndReset()));
        }

        var after = proxy.Memory();
        output.WriteLine($"proxy RSS before: {before.Current / 1048576.0:0.0} MiB (peak {before.Peak / 1048576.0:0.0} MiB); after 2 GiB: {after.Current / 1048576.0:0.0} MiB (peak {after.Peak / 1048576.0:0.0} MiB)");
        Assert.True(after.Peak < MaxProxyPeakRss, $"peak RSS {after.Peak / 1048576.0:0.0} MiB exceeds {MaxProxyPeakRss / 1048576} MiB");
        Assert.Equal(0, await proxy.TerminateAsync());
    }

    private static Task<ProcessResult> Curl(InterposeProcess proxy, Uri url) =>
        ProcessResult.RunAsync("curl", ["--silent", "--show-error", "--fail", "--proxy", proxy.Url.ToString(), "--noproxy", "", "--cacert", proxy.CaPemPath, url.ToString()]);
}

/// <summary>A deterministic body of any length: 64 KiB blocks of a fixed random pattern, each stamped with its index.</summary>
public sealed class PatternStream(long length) : Stream
{
    private const int BlockSize = 64 * 1024;
    private static readonly byte[] Pattern = CreatePattern();
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public static async IAsyncEnumerable<ReadOnlyMemory<byte>> Blocks(long length)
    {
        var block = new byte[BlockSize];
        for (long offset = 0; offset < length; offset += BlockSize)
        {
            var size = (int)Math.Min(BlockSize, length - offset);
            Fill(block, offset);
            yield return block.AsMemory(0, size);
        }

        await Task.CompletedTask;
    }

    public static string Sha256(long length)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var block = new byte[BlockSize];
        for (long offset = 0; offset < length; offset += BlockSize)
        {
            Fill(block, offset);
            sha.AppendData(block, 0, (int)Math.Min(BlockSize, length - offset));
        }

        return Convert.ToHexString(sha.GetHashAndReset());
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var remaining = length - _position;
        if (remaining <= 0)
        {
            return 0;
        }

        // Serve at most up to the end of the current block.
        var inBlock = (int)(_position % BlockSize);
        var count = (int)Math.Min(Math.Min(buffer.Length, BlockSize - inBlock), remaining);
        var block = new byte[BlockSize];
        Fill(block, _position - inBlock);
        block.AsSpan(inBlock, count).CopyTo(buffer);
        _position += count;
        return count;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private static void Fill(byte[] block, long offset)
    {
        Pattern.CopyTo(block, 0);
        BinaryPrimitives.WriteInt64LittleEndian(block, offset / BlockSize);
    }

    private static byte[] CreatePattern()
    {
        var pattern = new byte[BlockSize];
        new Random(20261124).NextBytes(pattern);
        return pattern;
    }
}
