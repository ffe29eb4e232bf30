using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>Failures toward the origin become clear answers: 502 or 504 with a reason, or a closed connection once the response started.</summary>
public sealed class FailureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Dns_failure_gives_502_naming_the_phase()
    {
        await using var proxy = await TestProxy.StartAsync(output, o =>
            o.Resolver = (host, _) => host == "nowhere.test"
                ? ValueTask.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound))
                : ValueTask.FromResult(new[] { IPAddress.Loopback }));
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync("http://nowhere.test/");
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("host name not found", body, StringComparison.Ordinal);
        Assert.Contains("phase: dns", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http")]
    [InlineData("https")]
    public async Task Refused_connection_gives_502(string scheme)
    {
        // A port that was just free: bind, note, close.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var proxy = await TestProxy.StartAsync(output);
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync($"{scheme}://localhost:{port}/");
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("connection refused", body, StringComparison.Ordinal);
        Assert.Contains("phase: connect", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Silent_origin_gives_504_after_the_response_head_timeout()
    {
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await RawOrigin.WaitForCloseAsync(stream);
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.Timeouts.ResponseHead = TimeSpan.FromMilliseconds(200));
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync($"http://localhost:{origin.Port}/");

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("timed out waiting for the response", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Origin_closing_mid_body_closes_the_client_connection()
    {
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."u8.ToArray());
        });
        await using var proxy = await TestProxy.StartAsync(output);
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));
        var received = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        // The head and the ten bytes arrived, then the connection closed: the client can tell the body is short.
        Assert.Equal("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", received);
    }

    [Fact]
    public async Task Origin_form_request_to_the_proxy_gets_400()
    {
        await using var proxy = await TestProxy.StartAsync(output);
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"u8.ToArray());
        var response = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 400 Bad Request", response, StringComparison.Ordinal);
        Assert.Contains("absolute URL", response, StringComparison.Ordinal);
    }
}
