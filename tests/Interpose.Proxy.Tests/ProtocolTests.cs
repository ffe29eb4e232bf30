using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Interpose.Core.Http;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>HTTP/1.1 details through the proxy, byte-exact at both ends.</summary>
public sealed class ProtocolTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Expect_100_continue_is_relayed_from_the_origin_not_invented()
    {
        var bodyAtOrigin = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray());
            bodyAtOrigin.SetResult(await RawClient.ReadAsciiAsync(stream, 5));
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
            await RawOrigin.WaitForCloseAsync(stream);
        });
        await using var proxy = await TestProxy.StartAsync(output);
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
        // The client sends its body only after the interim response: if the proxy did not relay it, this would wait forever.
        var interim = await RawClient.ReadAsciiAsync(client, "HTTP/1.1 100 Continue\r\n\r\n".Length);
        await client.WriteAsync("hello"u8.ToArray());
        var final = await RawClient.ReadAsciiAsync(client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".Length);

        Assert.Equal("HTTP/1.1 100 Continue\r\n\r\n", interim);
        Assert.Equal("hello", await bodyAtOrigin.Task);
        Assert.Equal("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", final);
    }

    [Fact]
    public async Task A_hook_answer_to_a_request_waiting_for_100_continue_comes_at_once_and_closes()
    {
        // The client sends its body only after a 100, which an answer made by a hook never brings: draining that body
        // first would wait for ever (no timeout runs before a body's first byte).
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnRequest = e => e.Respond(new HttpResponse(403, "Forbidden", HttpVersion.Version11, new HttpHeaders())),
        }));
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync("POST http://localhost:9/blocked HTTP/1.1\r\nHost: localhost:9\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"u8.ToArray());
        var answer = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 403 Forbidden\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close\r\n", answer, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("100 Continue", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_http10_client_expecting_100_continue_gets_no_1xx_when_a_hook_buffers_the_body()
    {
        // RFC 9110 §10.1.1 and §15.2: the expectation of an HTTP/1.0 request is ignored, and no 1xx goes to such a client.
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnRequestHeaders = e => e.Request.BufferBody = true,
        }));
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://localhost:{origin.Port}/ HTTP/1.0\r\nHost: localhost:{origin.Port}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"));
        var answer = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("100 Continue", answer, StringComparison.Ordinal);
        Assert.EndsWith("hello", origin.ReceivedText, StringComparison.Ordinal);
        Assert.DoesNotContain("Expect", origin.ReceivedText, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Head_and_304_responses_have_no_body_and_the_connection_carries_on()
    {
        await using var origin = new RawOrigin(async stream =>
        {
            var head = await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"u8.ToArray());
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\nETag: \"x\"\r\n\r\n"u8.ToArray());
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 204 No Content\r\n\r\n"u8.ToArray());
            Assert.StartsWith("HEAD ", head, StringComparison.Ordinal);
            await RawOrigin.WaitForCloseAsync(stream);
        });
        await using var proxy = await TestProxy.StartAsync(output);
        await using var client = await RawClient.ConnectAsync(proxy);
        var host = $"localhost:{origin.Port}";

        await client.WriteAsync(Encoding.ASCII.GetBytes($"HEAD http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        var first = await RawOrigin.ReadHeadAsync(client);
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\nIf-None-Match: \"x\"\r\n\r\n"));
        var second = await RawOrigin.ReadHeadAsync(client);
        await client.WriteAsync(Encoding.ASCII.GetBytes($"DELETE http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        var third = await RawOrigin.ReadHeadAsync(client);

        Assert.Equal("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", first);
        Assert.Equal("HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\nETag: \"x\"\r\n\r\n", second);
        Assert.Equal("HTTP/1.1 204 No Content\r\n\r\n", third);
    }

    [Fact]
    public async Task Absolute_form_upgrade_accepted_with_101_becomes_a_byte_relay()
    {
        string? headAtOrigin = null;
        await using var origin = new RawOrigin(async stream =>
        {
            headAtOrigin = await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"u8.ToArray());
            var buffer = new byte[64];
            int n;
            while ((n = await stream.ReadBoundedAsync(buffer)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, n));
            }
        });
        await using var proxy = await TestProxy.StartAsync(output);
        await using var client = await RawClient.ConnectAsync(proxy);
        var host = $"localhost:{origin.Port}";

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://{host}/chat HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"));
        var switching = await RawOrigin.ReadHeadAsync(client);
        await client.WriteAsync("any bytes \u0000\u0001"u8.ToArray());
        var echoed = await RawClient.ReadAsciiAsync(client, "any bytes \u0000\u0001".Length);

        Assert.StartsWith("HTTP/1.1 101 Switching Protocols\r\n", switching, StringComparison.Ordinal);
        Assert.Contains("Upgrade: echo\r\n", switching, StringComparison.Ordinal);
        Assert.Equal("any bytes \u0000\u0001", echoed);
        Assert.Contains("Upgrade: echo\r\n", headAtOrigin, StringComparison.Ordinal);
        Assert.Matches(new Regex("Connection: upgrade\r\n", RegexOptions.IgnoreCase), headAtOrigin!);
    }

    [Fact]
    public async Task A_101_to_a_request_that_asked_for_no_upgrade_is_a_502_not_a_relay()
    {
        // An origin that answers a plain GET with 101 and then forges answers for whatever comes next on the connection.
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"u8.ToArray());
            await RawOrigin.WaitForCloseAsync(stream);
        });
        await using var proxy = await TestProxy.StartAsync(output);
        await using var client = await RawClient.ConnectAsync(proxy);
        var host = $"localhost:{origin.Port}";

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        var head = await RawOrigin.ReadHeadAsync(client);

        Assert.StartsWith("HTTP/1.1 502 ", head, StringComparison.Ordinal);
        var length = int.Parse(Regex.Match(head, "Content-Length: ([0-9]+)").Groups[1].Value, CultureInfo.InvariantCulture);
        var body = await RawClient.ReadAsciiAsync(client, length);
        Assert.Contains("101 Switching Protocols to a request that asked for no upgrade", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Via_is_added_only_when_asked()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var plain = await TestProxy.StartAsync(output);
        await using var via = await TestProxy.StartAsync(output, o => o.AddVia = true);
        using var plainClient = plain.CreateClient();
        using var viaClient = via.CreateClient();

        var without = await plainClient.GetStringAsync(origin.Url("/headers"));
        var with = await viaClient.GetStringAsync(origin.Url("/headers"));

        Assert.DoesNotContain("Via:", without, StringComparison.Ordinal);
        Assert.Contains("Via: 1.1 interpose\n", with, StringComparison.Ordinal);
    }

    [Ipv6Fact]
    public async Task Listens_on_ipv6_loopback()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.ListenEndpoints.Clear();
            o.ListenEndpoints.Add(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        });

        var result = await ProcessResult.RunAsync("curl", ["--silent", "--show-error", "--fail", "--proxy", $"http://[::1]:{proxy.Server.Endpoints[0].Port}", origin.Url("/hello").ToString()]);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal("hello from origin", result.StandardOutput);
        Assert.Equal(IPAddress.IPv6Loopback, proxy.Server.Endpoints[0].Address);
    }

    [Fact]
    public async Task HttpClient_through_an_ignored_host_sees_the_origin_certificate()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.IgnoreHosts.Add(new Regex("^localhost:\\d+$")));
        using var trustsOrigin = proxy.CreateClient(trustInstead: TestPki.OriginRoot);
        using var trustsInterpose = proxy.CreateClient();

        Assert.Equal("hello from origin", await trustsOrigin.GetStringAsync(origin.Url("/hello")));
        await Assert.ThrowsAsync<System.Net.Http.HttpRequestException>(() => trustsInterpose.GetStringAsync(origin.Url("/hello")));
    }
}
