using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// Failures toward the origin become clear answers: 502 or 504 with a reason, or a closed connection once the response
/// started. A request whose reused origin connection fails before any response byte is sent again only when its method is
/// idempotent (RFC 9110 §9.2.2, RFC 9112 §9.3.1: "A proxy MUST NOT automatically retry non-idempotent requests"); the
/// HTTP/2 cases are in Http2UpstreamTests.
/// </summary>
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
    public async Task A_client_that_resets_in_the_middle_of_its_upload_is_the_failure_not_the_origin()
    {
        // The origin reads the head and the first part of the body, then waits: only the client's reset ends the exchange.
        var bodyStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await RawOrigin.ReadExactlyAsync(stream, 10);
            bodyStarted.TrySetResult();
            await RawOrigin.WaitForCloseAsync(stream);
        });
        var done = new TaskCompletionSource<HttpExchange>(TaskCreationOptions.RunContinuationsAsynchronously);
        var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks { OnDone = e => done.TrySetResult(e) }), logs: logs);
        var client = (NetworkStream)await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://localhost:{origin.Port}/upload HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nContent-Length: 1000000\r\n\r\n0123456789"));
        await bodyStarted.Task.WaitAsync(BoundedRead.Limit);
        client.Socket.LingerState = new LingerOption(true, 0); // closed with SO_LINGER 0: a reset
        client.Socket.Close();
        await client.DisposeAsync();
        var error = (await done.Task.WaitAsync(BoundedRead.Limit)).Error;

        Assert.Equal(ExchangePhase.ClientRequest, error?.Phase);
        Assert.Contains("the client's connection failed", error!.Message, StringComparison.Ordinal);
        // Logged as the client's connection ending (event 122), not as the origin failing (event 120).
        Assert.Contains(logs.Entries, e => e.EventId.Id == 122 && e.Message.Contains("the client's connection failed", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 120);
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

    [Theory]
    [InlineData("GET")]
    [InlineData("HEAD")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    public async Task An_idempotent_request_on_a_reused_connection_the_origin_closes_after_reading_it_is_sent_again(string method)
    {
        var run = await RunOnStaleConnectionAsync(method, beforeClose: null);

        Assert.StartsWith("HTTP/1.1 200 ", run.Response, StringComparison.Ordinal);
        Assert.Equal(2, run.OriginSaw);
        Assert.Equal(2, run.OriginConnections);
        Assert.Equal(["idempotent"], run.Retries);
        Assert.Contains($"{method} is idempotent", run.RetryLog, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("PATCH")]
    public async Task A_non_idempotent_request_on_a_reused_connection_the_origin_closes_after_reading_it_is_answered_502_and_not_sent_again(string method)
    {
        var run = await RunOnStaleConnectionAsync(method, beforeClose: null);

        Assert.StartsWith("HTTP/1.1 502 ", run.Response, StringComparison.Ordinal);
        Assert.Contains("RFC 9110 §9.2.2", run.Response, StringComparison.Ordinal);
        Assert.Equal(ExchangePhase.Response, run.Error?.Phase);
        Assert.True(run.Error?.IsTransient);
        Assert.Contains($"the {method} request may have reached the origin", run.Error?.Message, StringComparison.Ordinal);

        // Once: on the connection it reached, and no other connection opened for it.
        Assert.Equal(1, run.OriginSaw);
        Assert.Equal(1, run.OriginConnections);
        Assert.Empty(run.Retries);
    }

    [Fact]
    public async Task A_GET_whose_reused_connection_closes_after_part_of_the_response_head_is_answered_502_and_not_sent_again()
    {
        // A response byte arrived, so the origin processed the request: RFC 9110 §9.2.2 allows a retry only before.
        var run = await RunOnStaleConnectionAsync("GET", beforeClose: "HTTP/1.1 200 OK\r\nContent-Le");

        Assert.StartsWith("HTTP/1.1 502 ", run.Response, StringComparison.Ordinal);
        Assert.Contains("in the middle of the response head", run.Response, StringComparison.Ordinal);
        Assert.Equal(1, run.OriginSaw);
        Assert.Equal(1, run.OriginConnections);
        Assert.Empty(run.Retries);
    }

    /// <summary>What <see cref="RunOnStaleConnectionAsync"/> saw.</summary>
    /// <param name="Response">The response to /second as the client read it (head and body).</param>
    /// <param name="OriginSaw">How many times /second reached the origin.</param>
    /// <param name="OriginConnections">Connections the origin accepted.</param>
    /// <param name="Retries">The <c>reason</c> tags of <c>interpose.upstream.retries</c>.</param>
    /// <param name="RetryLog">The message of event 166, or null when it did not fire.</param>
    /// <param name="Error">The flow's error for /second.</param>
    private sealed record StaleRun(string Response, int OriginSaw, int OriginConnections, string[] Retries, string? RetryLog, ExchangeError? Error);

    /// <summary>
    /// /first, then a bodiless <paramref name="method"/> /second on the same client connection, so that /second takes
    /// the origin connection /first left in the pool. The origin answers /first and keeps the connection; the first
    /// /second it reads, it writes <paramref name="beforeClose"/> (if any) and closes the connection; a later /second
    /// is answered.
    /// </summary>
    private async Task<StaleRun> RunOnStaleConnectionAsync(string method, string? beforeClose)
    {
        var seen = 0;
        await using var origin = new RawOrigin(async stream =>
        {
            while (true)
            {
                var head = await RawOrigin.ReadHeadAsync(stream);
                if (head.Contains(" /first ", StringComparison.Ordinal))
                {
                    await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"u8.ToArray());
                    continue;
                }

                if (Interlocked.Increment(ref seen) == 1)
                {
                    if (beforeClose is not null)
                    {
                        await stream.WriteAsync(Encoding.Latin1.GetBytes(beforeClose));
                    }

                    // Read, maybe processed, never answered: the connection closes as the handler returns.
                    return;
                }

                // RFC 9110 §9.3.2: a HEAD response has the fields of a GET's and no content.
                var response = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n" + (head.StartsWith("HEAD ", StringComparison.Ordinal) ? "" : "second");
                await stream.WriteAsync(Encoding.Latin1.GetBytes(response));
            }
        });
        var done = new TaskCompletionSource<ExchangeError?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks { OnDone = e => { if (e.Request.Path == "/second") { done.TrySetResult(e.Error); } } }), logs: logs);
        var retries = new ConcurrentQueue<string>();
        using var listener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.upstream.retries", "reason", retries);
        await using var client = await RawClient.ConnectAsync(proxy);
        var target = $"http://127.0.0.1:{origin.Port}";

        await client.WriteAsync(Encoding.Latin1.GetBytes($"GET {target}/first HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n\r\n"));
        Assert.EndsWith("\r\n\r\nfirst", await ReadResponseAsync(client, bodiless: false), StringComparison.Ordinal);

        var length = method is "GET" or "HEAD" or "DELETE" ? "" : "Content-Length: 0\r\n";
        await client.WriteAsync(Encoding.Latin1.GetBytes($"{method} {target}/second HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{length}\r\n"));
        var second = await ReadResponseAsync(client, bodiless: method == "HEAD");
        var error = await done.Task.WaitAsync(BoundedRead.Limit);
        var retryLog = logs.Entries.FirstOrDefault(e => e.EventId.Id == 166)?.Message;
        return new StaleRun(second, Volatile.Read(ref seen), origin.AcceptedConnections, [.. retries], retryLog, error);
    }

    /// <summary>A response with a Content-Length (the proxy's own 502 body is UTF-8: it cites "§").</summary>
    private static async Task<string> ReadResponseAsync(Stream client, bool bodiless)
    {
        var head = await RawOrigin.ReadHeadAsync(client);
        if (bodiless)
        {
            return head;
        }

        var length = head.Split("\r\n").Single(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))["Content-Length:".Length..];
        var body = new byte[int.Parse(length, NumberStyles.AllowLeadingWhite, CultureInfo.InvariantCulture)];
        await client.ReadExactlyBoundedAsync(body);
        return head + Encoding.UTF8.GetString(body);
    }
}
