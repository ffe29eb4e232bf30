using System.Net;
using System.Net.Http;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>HttpClient speaking HTTP/2 (RequestVersionExact) through the proxy to an HTTP/1.1 origin, intercepted.</summary>
public sealed class Http2ClientSideTests(ITestOutputHelper output)
{
    private const int BigBodyBytes = 5 * 1024 * 1024;

    [Fact]
    public async Task Get_and_posts_over_h2_reach_the_origin_over_http11()
    {
        await using var origin = await StartOriginAsync();
        var counter = new ConnectionCounter();
        await using var proxy = await TestProxy.StartAsync(output, o => { o.Http2 = true; o.Addons.Add(counter); });
        using var client = proxy.CreateClient();

        using (var response = await client.SendAsync(H2(HttpMethod.Get, origin.Url("/hello"))))
        {
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.Equal("hello from origin", await response.Content.ReadAsStringAsync());
        }

        // A body with a length, larger than the initial 64 KiB windows both ways.
        var payload = new byte[300_000];
        Random.Shared.NextBytes(payload);
        using (var request = H2(HttpMethod.Post, origin.Url("/echo")))
        {
            request.Content = new ByteArrayContent(payload);
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.Equal("HTTP/1.1", response.Headers.GetValues("X-Request-Protocol").Single());
            Assert.Equal(payload, await response.Content.ReadAsByteArrayAsync());
        }

        // A body of unknown length: DATA until END_STREAM, chunked to the HTTP/1.1 origin.
        using (var request = H2(HttpMethod.Post, origin.Url("/echo")))
        {
            request.Content = new StreamContent(new NonSeekableStream("streamed"u8.ToArray()));
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            Assert.Equal("chunked", response.Headers.GetValues("X-Request-Chunked").Single());
            Assert.Equal("streamed", await response.Content.ReadAsStringAsync());
        }

        // Host came from :authority.
        var headers = await (await client.SendAsync(H2(HttpMethod.Get, origin.Url("/headers")))).Content.ReadAsStringAsync();
        Assert.Contains($"Host: localhost:{origin.Port}\n", headers, StringComparison.Ordinal);
        Assert.Equal(1, counter.ClientConnections);
    }

    [Fact]
    public async Task Without_the_option_the_client_gets_no_h2()
    {
        await using var origin = await StartOriginAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = false);
        using var client = proxy.CreateClient();

        await Assert.ThrowsAsync<HttpRequestException>(() => client.SendAsync(H2(HttpMethod.Get, origin.Url("/hello"))));
    }

    [Fact]
    public async Task A_large_download_flows_through_the_send_windows()
    {
        await using var origin = await StartOriginAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);
        using var client = proxy.CreateClient();

        using var response = await client.SendAsync(H2(HttpMethod.Get, origin.Url("/big")), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpVersion.Version20, response.Version);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(BigBodyBytes, body.Length);
        Assert.True(body.Select((b, i) => b == (byte)i).All(x => x));
    }

    [Fact]
    public async Task Many_concurrent_requests_share_one_connection()
    {
        await using var origin = await StartOriginAsync();
        var counter = new ConnectionCounter();
        await using var proxy = await TestProxy.StartAsync(output, o => { o.Http2 = true; o.Addons.Add(counter); });
        using var client = proxy.CreateClient();

        // Warm the connection so every request below multiplexes on it.
        Assert.Equal("hello from origin", await (await client.SendAsync(H2(HttpMethod.Get, origin.Url("/hello")))).Content.ReadAsStringAsync());
        var tasks = Enumerable.Range(0, 50).Select(async i =>
        {
            using var request = H2(HttpMethod.Post, origin.Url("/echo"));
            request.Content = new StringContent("request " + i);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpVersion.Version20, response.Version);
            return await response.Content.ReadAsStringAsync();
        });
        var bodies = await Task.WhenAll(tasks);

        Assert.Equal(Enumerable.Range(0, 50).Select(i => "request " + i), bodies);
        Assert.Equal(1, counter.ClientConnections);
    }

    [Fact]
    public async Task Hooks_run_per_stream()
    {
        await using var origin = await StartOriginAsync();
        var streams = new System.Collections.Concurrent.ConcurrentBag<(int Stream, Version Version)>();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.Addons.Add(new StreamHooks(streams));
        });
        using var client = proxy.CreateClient();

        using (var response = await client.SendAsync(H2(HttpMethod.Get, origin.Url("/synthetic"))))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Assert.Equal("made by a hook", await response.Content.ReadAsStringAsync());
        }

        var headers = await (await client.SendAsync(H2(HttpMethod.Get, origin.Url("/headers")))).Content.ReadAsStringAsync();
        Assert.Contains("X-Hooked: 3\n", headers, StringComparison.Ordinal);

        // Each exchange saw its own HTTP/2 stream id and the client's version.
        Assert.Equal([(1, HttpVersion.Version20), (3, HttpVersion.Version20)], streams.OrderBy(s => s.Stream));
    }

    [Fact]
    public async Task Curl_speaks_http2_through_the_proxy()
    {
        await using var origin = await StartOriginAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);

        var result = await proxy.CurlAsync(proxy.CaPemPath, "--http2", "-w", "\n%{http_version}", origin.Url("/hello").ToString());

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal("hello from origin\n2", result.StandardOutput);
    }

    [Fact]
    public async Task Curl_prior_knowledge_h2c_inside_a_tunnel()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);

        var result = await proxy.CurlAsync(null, "--http2-prior-knowledge", "--proxytunnel", "-w", "\n%{http_version}", origin.Url("/hello").ToString());

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal("hello from origin\n2", result.StandardOutput);
    }

    private static HttpRequestMessage H2(HttpMethod method, Uri url) =>
        new(method, url) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

    private static Task<KestrelOrigin> StartOriginAsync() => KestrelOrigin.StartAsync(
        app =>
        {
            Origins.MapBasics(app);
            app.MapGet("/big", async (HttpContext context) =>
            {
                var chunk = new byte[64 * 1024];
                for (var i = 0; i < chunk.Length; i++)
                {
                    chunk[i] = (byte)i;
                }

                context.Response.ContentLength = BigBodyBytes;
                for (var sent = 0; sent < BigBodyBytes; sent += chunk.Length)
                {
                    await context.Response.Body.WriteAsync(chunk);
                }
            });
        },
        TestPki.Issue(TestPki.OriginRoot, "localhost"),
        // HTTP/1.1 only: these tests are about an HTTP/2 client reaching an h1 origin (translation h2 -> h1).
        protocols: Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1);

    /// <summary>A stream without a length, so HttpClient sends DATA until END_STREAM with no content-length.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }

    private sealed class StreamHooks(System.Collections.Concurrent.ConcurrentBag<(int, Version)> streams) : ProxyAddon
    {
        public override string Name => "stream-hooks";

        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            streams.Add((exchange.StreamId, exchange.ClientVersion));
            exchange.Request.Headers.Add("X-Hooked", exchange.StreamId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return default;
        }

        public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (exchange.Request.Path == "/synthetic")
            {
                exchange.Respond(HttpResponse.Text(202, "made by a hook"));
            }

            return default;
        }
    }
}
