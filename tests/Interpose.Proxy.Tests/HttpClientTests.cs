using System.Net;
using System.Net.Http;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>.NET's HttpClient with a WebProxy through Interpose, trusting only the Interpose CA.</summary>
public sealed class HttpClientTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Get_post_put_and_chunked_upload(bool tls)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        var counter = new ConnectionCounter();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(counter));
        using var client = proxy.CreateClient();

        Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));

        foreach (var method in new[] { HttpMethod.Post, HttpMethod.Put })
        {
            var payload = new byte[100_000];
            Random.Shared.NextBytes(payload);
            using var request = new HttpRequestMessage(method, origin.Url("/echo")) { Content = new ByteArrayContent(payload) };
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            Assert.Equal(payload, await response.Content.ReadAsByteArrayAsync());
            Assert.Equal(method.Method, response.Headers.GetValues("X-Method").Single());
        }

        // A body of unknown length goes chunked.
        using (var request = new HttpRequestMessage(HttpMethod.Post, origin.Url("/echo")) { Content = new StreamContent(new NonSeekableStream("streamed"u8.ToArray())) })
        {
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            Assert.Equal("chunked", response.Headers.GetValues("X-Request-Chunked").Single());
            Assert.Equal("streamed", await response.Content.ReadAsStringAsync());
        }

        // Everything went over one client connection and one origin connection (keep-alive both sides).
        Assert.Equal(1, counter.ClientConnections);
        Assert.Equal(1, counter.ServerConnections);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Http10_request(bool tls)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output);
        using var client = proxy.CreateClient();

        using var request = new HttpRequestMessage(HttpMethod.Post, origin.Url("/echo")) { Version = HttpVersion.Version10, Content = new StringContent("ten") };
        using var response = await client.SendAsync(request);

        response.EnsureSuccessStatusCode();
        Assert.Equal("HTTP/1.0", response.Headers.GetValues("X-Request-Protocol").Single());
        Assert.Equal("ten", await response.Content.ReadAsStringAsync());
    }

    /// <summary>A stream without a length, so HttpClient must send chunked.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
