using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The spec wrapper runs after the hooks, whatever they did (docs/security.md, "Hop-by-hop"): hop-by-hop fields a hook
/// adds are removed and framing fields a hook sets wrong are replaced by the framing of what is really sent, so a hook
/// cannot desynchronise the proxy from the origin or the client.
/// </summary>
public sealed class SpecWrapperTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Hop_by_hop_and_framing_fields_a_hook_adds_to_a_bodiless_request_never_reach_the_origin()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new AddWrongFields(request: true, Spoil)));
        await using var client = await RawClient.ConnectAsync(proxy);

        var host = $"localhost:{origin.Port}";
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://{host}/a HTTP/1.1\r\nHost: {host}\r\n\r\nGET http://{host}/b HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        var answers = (await RawClient.ReadUntilClosedAsync(client)).Text;
        var atOrigin = origin.ReceivedText;

        Assert.Equal(2, CountOf(answers, "HTTP/1.1 200 OK\r\n"));
        Assert.Equal(2, CountOf(atOrigin, "GET /"));
        Assert.Equal(2, CountOf(atOrigin, "\r\nX-Hook: kept\r\n"));
        Assert.DoesNotContain("X-Named-By-Connection", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Keep-Alive", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Transfer-Encoding", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Content-Length", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Proxy-Connection", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("\r\nTE:", atOrigin, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_wrong_content_length_a_hook_sets_on_a_streamed_request_body_is_replaced_by_the_real_one()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new AddWrongFields(request: true, Spoil)));
        await using var client = await RawClient.ConnectAsync(proxy);

        var host = $"localhost:{origin.Port}";
        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://{host}/a HTTP/1.1\r\nHost: {host}\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789"));
        var answer = (await RawClient.ReadUntilClosedAsync(client)).Text;
        var atOrigin = origin.ReceivedText;

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nContent-Length: 10\r\n", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(1, CountOf(atOrigin, "Content-Length"));
        Assert.DoesNotContain("Transfer-Encoding", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith("\r\n\r\n0123456789", atOrigin, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hop_by_hop_and_framing_fields_a_hook_adds_to_a_response_never_reach_the_client()
    {
        await using var origin = RawOrigin.Recording("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new AddWrongFields(request: false, Spoil)));
        await using var client = await RawClient.ConnectAsync(proxy);

        var host = $"localhost:{origin.Port}";
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://{host}/a HTTP/1.1\r\nHost: {host}\r\n\r\nGET http://{host}/b HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        var answers = (await RawClient.ReadUntilClosedAsync(client)).Text;

        // Both answers arrive whole, each framed by its real length: a wrong Content-Length or a Transfer-Encoding
        // left in would make the client read the second answer as the first one's body (or wait for bytes forever).
        var first = answers[..answers.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        Assert.Equal(2, CountOf(answers, "HTTP/1.1 200 OK\r\n"));
        Assert.Equal(2, CountOf(answers, "\r\n\r\nok"));
        Assert.Equal(2, CountOf(answers, "\r\nX-Hook: kept\r\n"));
        Assert.Contains("\r\nContent-Length: 2", first + "\r\n", StringComparison.Ordinal);
        Assert.Equal(1, CountOf(first, "Content-Length"));
        Assert.DoesNotContain("X-Named-By-Connection", answers, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Keep-Alive", answers, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Transfer-Encoding", answers, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Proxy-Connection", answers, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_chunked_request_body_keeps_its_transfer_encoding_and_gets_no_content_length_whatever_a_hook_set()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new AddWrongFields(request: true, headers =>
        {
            headers.Remove("Transfer-Encoding");
            headers.Set("Content-Length", "3");
        })));
        await using var client = await RawClient.ConnectAsync(proxy);

        var host = $"localhost:{origin.Port}";
        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://{host}/a HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\na\r\n0123456789\r\n0\r\n\r\n"));
        var answer = (await RawClient.ReadUntilClosedAsync(client)).Text;
        var atOrigin = origin.ReceivedText;

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nTransfer-Encoding: chunked\r\n", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Content-Length", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith("\r\n\r\na\r\n0123456789\r\n0\r\n\r\n", atOrigin, StringComparison.Ordinal);
    }

    private static int CountOf(string text, string part)
    {
        var count = 0;
        for (var i = text.IndexOf(part, StringComparison.OrdinalIgnoreCase); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.OrdinalIgnoreCase))
        {
            count++;
        }

        return count;
    }

    /// <summary>Adds hop-by-hop fields, and framing fields with wrong values.</summary>
    private static void Spoil(Interpose.Core.Http.HttpHeaders headers)
    {
        headers.Add("X-Hook", "kept");
        headers.Add("Connection", "keep-alive, X-Named-By-Connection");
        headers.Add("X-Named-By-Connection", "secret");
        headers.Add("Keep-Alive", "timeout=600");
        headers.Add("Proxy-Connection", "keep-alive");
        headers.Add("TE", "trailers");
        headers.Add("Transfer-Encoding", "chunked");
        headers.Set("Content-Length", "5");
    }

    /// <summary>A hook that changes the head of each request or each response with <paramref name="change"/>.</summary>
    private sealed class AddWrongFields(bool request, Action<Interpose.Core.Http.HttpHeaders> change) : ProxyAddon
    {
        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (request)
            {
                change(exchange.Request.Headers);
            }

            return default;
        }

        public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (!request)
            {
                change(exchange.Response!.Headers);
            }

            return default;
        }
    }
}
