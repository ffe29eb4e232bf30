using System.Net.Security;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>What the client sent is what the origin gets, and back, byte for byte but for hop-by-hop fields.</summary>
public sealed class FaithfulnessTests(ITestOutputHelper output)
{
    private const string OriginResponse =
        "HTTP/1.1 200 OK\r\n" +
        "Set-Cookie: a=1\r\n" +
        "X-Mixed-CASE: v  with  spaces\r\n" +
        "Set-Cookie: b=2\r\n" +
        "set-cookie: c=3\r\n" +
        "Content-Length: 2\r\n" +
        "\r\n" +
        "ok";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Request_and_response_heads_pass_exactly_but_for_hop_by_hop_fields(bool tls)
    {
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var certificate = tls ? TestPki.Issue(TestPki.OriginRoot, "localhost") : null;
        await using var origin = new RawOrigin(async stream =>
        {
            Stream s = stream;
            if (certificate is not null)
            {
                var ssl = new SslStream(stream);
                await ssl.AuthenticateAsServerAsync(certificate);
                s = ssl;
            }

            var head = await RawOrigin.ReadHeadAsync(s);
            var body = await RawClient.ReadAsciiAsync(s, 5);
            received.TrySetResult(head + body);
            await s.WriteAsync(Encoding.Latin1.GetBytes(OriginResponse));
            await s.FlushAsync();
            await RawOrigin.WaitForCloseAsync(s);
        });
        await using var proxy = await TestProxy.StartAsync(output);

        var authority = $"localhost:{origin.Port}";
        var target = tls ? "/path?q=1" : $"http://{authority}/path?q=1";
        var fields =
            $"Host: {authority}\r\n" +
            "X-Custom-Case: Value\r\n" +
            "x-lower: a\r\n" +
            "X-Dup: 1\r\n" +
            "Connection: keep-alive, X-Hop\r\n" +
            "X-Hop: should-be-removed\r\n" +
            "Proxy-Connection: keep-alive\r\n" +
            "Keep-Alive: timeout=5\r\n" +
            "X-Dup: 2\r\n" +
            "Proxy-Authorization: Basic abc\r\n" +
            "TE: trailers\r\n" +
            "Content-Length: 5\r\n";
        await using var client = tls ? await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true) : await RawClient.ConnectAsync(proxy);
        await client.WriteAsync(Encoding.Latin1.GetBytes($"GET {target} HTTP/1.1\r\n{fields}\r\nhello"));

        var response = await RawClient.ReadAsciiAsync(client, OriginResponse.Length);
        var atOrigin = await received.Task;

        Assert.Equal(
            "GET /path?q=1 HTTP/1.1\r\n" +
            $"Host: {authority}\r\n" +
            "X-Custom-Case: Value\r\n" +
            "x-lower: a\r\n" +
            "X-Dup: 1\r\n" +
            "X-Dup: 2\r\n" +
            "Content-Length: 5\r\n" +
            "\r\n" +
            "hello",
            atOrigin);
        Assert.Equal(OriginResponse, response);
    }

    [Fact]
    public async Task Chunked_response_with_trailers_passes_byte_for_byte()
    {
        const string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-Sum: 6\r\n\r\n";
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync(Encoding.Latin1.GetBytes(chunked));
            await RawOrigin.WaitForCloseAsync(stream);
        });
        await using var proxy = await TestProxy.StartAsync(output);
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));

        Assert.Equal(chunked, await RawClient.ReadAsciiAsync(client, chunked.Length));
    }

    [Theory]
    [InlineData("HTTP/1.1", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nhello!\r\n0\r\nX-Sum: 6\r\n\r\n")]
    [InlineData("HTTP/1.0", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!")]
    public async Task A_chunked_response_a_hook_buffered_keeps_its_trailers_for_an_http11_client(string clientVersion, string expected)
    {
        // RFC 9112 §7.1.2: trailers travel only in chunked framing; the buffered body goes out whole, chunked once, to
        // a client that has chunked framing (an HTTP/1.0 one gets a Content-Length and no trailers).
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\nX-Sum: 6\r\n\r\n"u8.ToArray());
            await RawOrigin.WaitForCloseAsync(stream);
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks { OnResponseHeaders = e => e.Response!.BufferBody = true }));
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ {clientVersion}\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"));

        Assert.Equal(expected, Encoding.Latin1.GetString(await RawClient.ReadToEndAsync(client)));
    }
}
