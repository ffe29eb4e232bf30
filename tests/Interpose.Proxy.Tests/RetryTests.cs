using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// A request whose reused HTTP/1.1 origin connection fails before any response byte: sent again on a new connection
/// only when its method is idempotent (RFC 9110 §9.2.2, RFC 9112 §9.3.1: "A proxy MUST NOT automatically retry
/// non-idempotent requests"), otherwise answered 502 with the reason. The HTTP/2 rules are in Http2UpstreamTests.
/// </summary>
public sealed class RetryTests(ITestOutputHelper output)
{
    private const string FirstResponse = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst";

    [Theory]
    [InlineData("GET")]
    [InlineData("HEAD")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    public async Task An_idempotent_request_on_a_reused_connection_the_origin_closes_after_reading_it_is_sent_again(string method)
    {
        await using var origin = StaleOrigin(onFirstSecond: null);
        var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, logs: logs);
        var retries = new ConcurrentQueue<string>();
        using var listener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.upstream.retries", "reason", retries);
        await using var client = await RawClient.ConnectAsync(proxy);

        await AssertFirstAnsweredAsync(client, origin.Origin.Port);
        var head = await SendSecondAsync(client, method, origin.Origin.Port);

        Assert.StartsWith("HTTP/1.1 200 ", head, StringComparison.Ordinal);
        Assert.Equal(2, origin.SecondSeen);
        Assert.Equal(2, origin.Origin.AcceptedConnections);
        Assert.Equal(["idempotent"], retries);
        Assert.Contains($"{method} is idempotent", (await logs.WaitForAsync(166)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("PATCH")]
    public async Task A_non_idempotent_request_on_a_reused_connection_the_origin_closes_after_reading_it_is_answered_502_and_not_sent_again(string method)
    {
        await using var origin = StaleOrigin(onFirstSecond: null);
        var done = new TaskCompletionSource<ExchangeError?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks { OnDone = e => { if (e.Request.Path == "/second") { done.TrySetResult(e.Error); } } }));
        var retries = new ConcurrentQueue<string>();
        using var listener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.upstream.retries", "reason", retries);
        await using var client = await RawClient.ConnectAsync(proxy);

        await AssertFirstAnsweredAsync(client, origin.Origin.Port);
        var head = await SendSecondAsync(client, method, origin.Origin.Port);

        Assert.StartsWith("HTTP/1.1 502 ", head, StringComparison.Ordinal);
        Assert.Contains("RFC 9110 §9.2.2", head, StringComparison.Ordinal);
        var error = await done.Task.WaitAsync(BoundedRead.Limit);
        Assert.Equal(ExchangePhase.Response, error?.Phase);
        Assert.True(error?.IsTransient);
        Assert.Contains($"the {method} request may have reached the origin", error?.Message, StringComparison.Ordinal);

        // Once: the connection it reached, and no other opened for it.
        Assert.Equal(1, origin.SecondSeen);
        Assert.Equal(1, origin.Origin.AcceptedConnections);
        Assert.Empty(retries);
    }

    [Fact]
    public async Task A_GET_whose_reused_connection_closes_after_part_of_the_response_head_is_answered_502_and_not_sent_again()
    {
        // A response byte arrived: the origin processed the request (RFC 9110 §9.2.2 allows a retry only before).
        await using var origin = StaleOrigin(onFirstSecond: "HTTP/1.1 200 OK\r\nContent-Le");
        await using var proxy = await TestProxy.StartAsync(output);
        await using var client = await RawClient.ConnectAsync(proxy);

        await AssertFirstAnsweredAsync(client, origin.Origin.Port);
        var head = await SendSecondAsync(client, "GET", origin.Origin.Port);

        Assert.StartsWith("HTTP/1.1 502 ", head, StringComparison.Ordinal);
        Assert.Contains("in the middle of the response head", head, StringComparison.Ordinal);
        Assert.Equal(1, origin.SecondSeen);
        Assert.Equal(1, origin.Origin.AcceptedConnections);
    }

    /// <summary>
    /// An origin that answers /first and keeps the connection; the first /second it reads, it closes the connection
    /// after writing <paramref name="onFirstSecond"/> (nothing when null); any later /second is answered.
    /// </summary>
    private static StaleOriginState StaleOrigin(string? onFirstSecond)
    {
        var state = new StaleOriginState();
        state.Origin = new RawOrigin(async stream =>
        {
            while (true)
            {
                var head = await RawOrigin.ReadHeadAsync(stream);
                if (head.Contains(" /first ", StringComparison.Ordinal))
                {
                    await stream.WriteAsync(Encoding.Latin1.GetBytes(FirstResponse));
                    continue;
                }

                if (state.SawSecond() == 1)
                {
                    if (onFirstSecond is not null)
                    {
                        await stream.WriteAsync(Encoding.Latin1.GetBytes(onFirstSecond));
                    }

                    // Read, maybe processed, never answered: the connection closes with the handler's end.
                    return;
                }

                // RFC 9110 §9.3.2: a HEAD response has the fields of a GET's and no content.
                var response = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n" + (head.StartsWith("HEAD ", StringComparison.Ordinal) ? "" : "second");
                await stream.WriteAsync(Encoding.Latin1.GetBytes(response));
            }
        });
        return state;
    }

    /// <summary>/first through the proxy on the client's connection: the origin connection then waits in the pool.</summary>
    private static async Task AssertFirstAnsweredAsync(Stream client, int port)
    {
        await client.WriteAsync(Encoding.Latin1.GetBytes($"GET http://127.0.0.1:{port}/first HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"));
        var head = await RawOrigin.ReadHeadAsync(client);
        Assert.StartsWith("HTTP/1.1 200 ", head, StringComparison.Ordinal);
        Assert.Equal("first", await RawClient.ReadAsciiAsync(client, ContentLength(head)));
    }

    /// <summary>/second, bodiless (Content-Length: 0 for the methods that take content), on the same client connection:
    /// the proxy takes the pooled origin connection for it. Returns the response head and body as text.</summary>
    private static async Task<string> SendSecondAsync(Stream client, string method, int port)
    {
        var length = method is "GET" or "HEAD" or "DELETE" ? "" : "Content-Length: 0\r\n";
        await client.WriteAsync(Encoding.Latin1.GetBytes($"{method} http://127.0.0.1:{port}/second HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{length}\r\n"));
        var head = await RawOrigin.ReadHeadAsync(client);
        if (method == "HEAD")
        {
            return head;
        }

        // The proxy's own 502 body is UTF-8 (it cites "§").
        var body = new byte[ContentLength(head)];
        await client.ReadExactlyBoundedAsync(body);
        return head + Encoding.UTF8.GetString(body);
    }

    private static int ContentLength(string head)
    {
        foreach (var line in head.Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            {
                return int.Parse(line.AsSpan("Content-Length:".Length).Trim(), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException("no Content-Length in " + head);
    }

    private sealed class StaleOriginState : IAsyncDisposable
    {
        private int _secondSeen;

        public RawOrigin Origin { get; set; } = null!;

        /// <summary>How many times /second reached the origin.</summary>
        public int SecondSeen => Volatile.Read(ref _secondSeen);

        public int SawSecond() => Interlocked.Increment(ref _secondSeen);

        public ValueTask DisposeAsync() => Origin.DisposeAsync();
    }
}
