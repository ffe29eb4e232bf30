using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>curl, a real external client, through the proxy: plain HTTP and intercepted HTTPS.</summary>
public sealed class CurlTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Get_reaches_the_origin(bool tls)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output);

        var result = await proxy.CurlAsync(proxy.CaPemPath, "--fail", origin.Url("/hello").ToString());

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal("hello from origin", result.StandardOutput);
    }

    [Theory]
    [InlineData(false, false, "1.1")]
    [InlineData(true, false, "1.1")]
    [InlineData(false, true, "1.1")]
    [InlineData(true, true, "2")]
    public async Task Http2_upgrade_on_plain_http_is_accepted_only_in_a_tunnel_and_never_reaches_the_origin(bool http2Option, bool tunnel, string version)
    {
        // curl --http2 on http:// sends "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c" and HTTP2-Settings, also
        // through a proxy (RFC 7540 §3.2). In absolute-form to the proxy, or with the Http2 option off, the proxy declines
        // the hop-by-hop upgrade and answers in HTTP/1.1. With --proxytunnel curl CONNECTs and sends it in origin-form
        // inside the tunnel: the proxy answers 101 and the request becomes stream 1, sent to the origin in HTTP/1.1.
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = http2Option);
        string[] args = ["--fail", "--http2", "--write-out", " %{http_version}", $"http://127.0.0.1:{origin.Port}/h2c"];

        var result = await proxy.CurlAsync(null, tunnel ? ["--proxytunnel", .. args] : args);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal("ok " + version, result.StandardOutput);
        var received = origin.ReceivedText;
        Assert.StartsWith("GET /h2c HTTP/1.1\r\n", received, StringComparison.Ordinal);
        Assert.DoesNotContain("h2c\r\n", received, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("HTTP2-Settings", received, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Upgrade", received, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Https_leaf_is_issued_by_the_interpose_ca_only()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output);
        var originRoot = Path.Combine(Path.GetTempPath(), $"origin-root-{Guid.NewGuid():N}.pem");
        await File.WriteAllTextAsync(originRoot, TestPki.OriginRoot.ExportCertificatePem());
        try
        {
            // Trusting only the Interpose CA works; trusting only the origin's own root does not: the client saw a forged leaf.
            var viaInterpose = await proxy.CurlAsync(proxy.CaPemPath, "--fail", origin.Url("/hello").ToString());
            var viaOriginRoot = await proxy.CurlAsync(originRoot, "--fail", origin.Url("/hello").ToString());

            Assert.True(viaInterpose.ExitCode == 0, viaInterpose.StandardError);
            Assert.Equal(60, viaOriginRoot.ExitCode); // CURLE_PEER_FAILED_VERIFICATION
        }
        finally
        {
            File.Delete(originRoot);
        }
    }

    [Theory]
    [InlineData(false, "POST")]
    [InlineData(true, "POST")]
    [InlineData(false, "PUT")]
    [InlineData(true, "PUT")]
    public async Task Request_body_reaches_the_origin_unchanged(bool tls, string method)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output);
        var body = Path.GetTempFileName();
        var bytes = new byte[300_000];
        new Random(42).NextBytes(bytes);
        await File.WriteAllBytesAsync(body, bytes);
        try
        {
            var outFile = body + ".out";
            var result = await proxy.CurlAsync(proxy.CaPemPath, "--fail", "-X", method, "--data-binary", "@" + body, "-o", outFile, origin.Url("/echo").ToString());

            Assert.True(result.ExitCode == 0, result.StandardError);
            Assert.Equal(bytes, await File.ReadAllBytesAsync(outFile));
            File.Delete(outFile);
        }
        finally
        {
            File.Delete(body);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Chunked_upload_passes(bool tls)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output);

        // HTTP/1.1 on both sides: over TLS curl would otherwise speak h2 to the proxy and the proxy h2 to the origin,
        // and HTTP/2 has no chunked framing (RFC 9113 §8.2.2).
        var result = await proxy.CurlAsync(proxy.CaPemPath, "--http1.1", "--fail", "-i", "-H", "Transfer-Encoding: chunked", "--data-binary", "chunked body", origin.Url("/echo").ToString());

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("X-Request-Chunked: chunked", result.StandardOutput, StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith("chunked body", result.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Http10_client_is_served(bool tls)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output);

        var result = await proxy.CurlAsync(proxy.CaPemPath, "--fail", "-0", "-i", "--data-binary", "ten", origin.Url("/echo").ToString());

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("X-Request-Protocol: HTTP/1.0", result.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("Transfer-Encoding", result.StandardOutput, StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith("ten", result.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Two_urls_in_one_call_reuse_one_connection(bool tls)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        var counter = new ConnectionCounter();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(counter));

        var result = await proxy.CurlAsync(proxy.CaPemPath, "--fail", origin.Url("/hello").ToString(), origin.Url("/hello").ToString());

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal("hello from originhello from origin", result.StandardOutput);
        Assert.Equal(1, counter.ClientConnections);
        Assert.Equal(1, counter.ServerConnections);
    }

    [Fact]
    public async Task Ignored_host_is_passed_through_and_curl_sees_the_origin_certificate()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.IgnoreHosts.Add(new System.Text.RegularExpressions.Regex("^localhost$")));
        var originRoot = Path.Combine(Path.GetTempPath(), $"origin-root-{Guid.NewGuid():N}.pem");
        await File.WriteAllTextAsync(originRoot, TestPki.OriginRoot.ExportCertificatePem());
        try
        {
            var withOriginRoot = await proxy.CurlAsync(originRoot, "--fail", origin.Url("/hello").ToString());
            var withInterposeCa = await proxy.CurlAsync(proxy.CaPemPath, "--fail", origin.Url("/hello").ToString());

            Assert.True(withOriginRoot.ExitCode == 0, withOriginRoot.StandardError);
            Assert.Equal("hello from origin", withOriginRoot.StandardOutput);
            Assert.Equal(60, withInterposeCa.ExitCode);
        }
        finally
        {
            File.Delete(originRoot);
        }
    }
}
