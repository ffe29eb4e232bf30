using System.Net;
using System.Net.Http;
using System.Net.WebSockets;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>Bodies stream (nothing waits for the whole body), upgrades become byte relays, shutdown is graceful.</summary>
public sealed class StreamingTests(ITestOutputHelper output)
{
    /// <summary>Bounds a test that would otherwise hang if the proxy buffered (a failure, not a timing assertion).</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Client_gets_the_first_chunk_while_the_origin_holds_back_the_second(bool tls)
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Map(WebApplication app) => app.MapGet("/events", async (HttpContext context) =>
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.WriteAsync("data: first\n\n");
            await context.Response.Body.FlushAsync();
            await release.Task;
            await context.Response.WriteAsync("data: second\n\n");
        });
        await using var origin = await KestrelOrigin.StartAsync(Map, tls ? TestPki.Issue(TestPki.OriginRoot, "localhost") : null);
        await using var proxy = await TestProxy.StartAsync(output);
        using var client = proxy.CreateClient();
        using var guard = new CancellationTokenSource(HangGuard);

        using var response = await client.GetAsync(origin.Url("/events"), HttpCompletionOption.ResponseHeadersRead, guard.Token);
        await using var body = await response.Content.ReadAsStreamAsync(guard.Token);
        var first = await ReadAtLeastAsync(body, "data: first\n\n".Length, guard.Token);
        release.SetResult();
        var rest = await new StreamReader(body).ReadToEndAsync(guard.Token);

        Assert.Equal("data: first\n\n", first);
        Assert.Equal("data: second\n\n", rest);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WebSocket_upgrade_echoes_both_ways(bool tls)
    {
        static void Map(WebApplication app)
        {
            app.UseWebSockets();
            app.Map("/ws", async (HttpContext context) =>
            {
                using var socket = await context.WebSockets.AcceptWebSocketAsync();
                var buffer = new byte[4096];
                while (true)
                {
                    var received = await socket.ReceiveAsync(buffer, CancellationToken.None);
                    if (received.MessageType == WebSocketMessageType.Close)
                    {
                        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                        return;
                    }

                    await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, CancellationToken.None);
                }
            });
        }

        await using var origin = await KestrelOrigin.StartAsync(Map, tls ? TestPki.Issue(TestPki.OriginRoot, "localhost") : null);
        await using var proxy = await TestProxy.StartAsync(output);
        using var socket = new ClientWebSocket();
        socket.Options.Proxy = new WebProxy(proxy.Url);
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, errors) => TestProxy.ChainsTo(cert, proxy.Authority.Certificate, errors);
        using var guard = new CancellationTokenSource(HangGuard);

        await socket.ConnectAsync(new Uri($"{(tls ? "wss" : "ws")}://localhost:{origin.Port}/ws"), guard.Token);
        var replies = new List<string>();
        foreach (var message in new[] { "ping", "second message", new string('x', 20_000) })
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, true, guard.Token);
            replies.Add(await ReceiveTextAsync(socket, guard.Token));
        }

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", guard.Token);

        Assert.Equal(["ping", "second message", new string('x', 20_000)], replies);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task Graceful_shutdown_lets_an_exchange_in_flight_finish()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Map(WebApplication app) => app.MapGet("/slow", async () =>
        {
            arrived.SetResult();
            await release.Task;
            return "finished";
        });
        await using var origin = await KestrelOrigin.StartAsync(Map);
        await using var proxy = await TestProxy.StartAsync(output);
        using var client = proxy.CreateClient();

        var inFlight = client.GetStringAsync(origin.Url("/slow"));
        await arrived.Task;
        var stopping = proxy.Server.StopAsync();

        // Stopping does not wait for the exchange to be abandoned: it is still there to finish.
        Assert.False(stopping.IsCompleted);
        release.SetResult();
        Assert.Equal("finished", await inFlight);
        await stopping;

        // And no new connection is accepted any more.
        using var late = proxy.CreateClient();
        await Assert.ThrowsAsync<HttpRequestException>(() => late.GetStringAsync(origin.Url("/slow")));
    }

    [Fact]
    public async Task Graceful_shutdown_answers_503_to_a_request_head_still_arriving()
    {
        // The request-head timeout here (31 s) is a value no other timer uses: its second arming is the proxy seeing
        // the first bytes of the second request (the timeout restarts from them), which is when the stop begins.
        var requestHead = TimeSpan.FromSeconds(31);
        var clock = new ManualClock();
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.TimeProvider = clock;
            o.Timeouts.RequestHead = requestHead;
        });
        await using var client = await RawClient.ConnectAsync(proxy);
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/hello HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));
        var first = new StringBuilder();
        var chunk = new byte[4096];
        // The whole first response (Kestrel sends a string result chunked): its last chunk or its body's end.
        while (!first.ToString().EndsWith("hello from origin", StringComparison.Ordinal) && !first.ToString().EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal))
        {
            var n = await client.ReadAsync(chunk).AsTask().WaitAsync(BoundedRead.Limit);
            Assert.True(n > 0, "the first response ended early: " + first);
            first.Append(Encoding.ASCII.GetString(chunk, 0, n));
        }

        Assert.StartsWith("HTTP/1.1 200 ", first.ToString(), StringComparison.Ordinal);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/hello HTTP/1.1\r\nHost: loc"));
        await clock.ArmedAsync(requestHead, times: 2).WaitAsync(BoundedRead.Limit);
        var stopping = proxy.Server.StopAsync();

        var answer = (await RawClient.ReadUntilClosedAsync(client)).Text;
        Assert.StartsWith("HTTP/1.1 503 ", answer, StringComparison.Ordinal);
        Assert.Contains("the proxy is stopping", answer, StringComparison.Ordinal);
        await stopping;
    }

    private static async Task<string> ReadAtLeastAsync(Stream stream, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, cancellationToken);
        return Encoding.UTF8.GetString(buffer);
    }

    private static async Task<string> ReceiveTextAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var total = 0;
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer.AsMemory(total), cancellationToken);
            total += result.Count;
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(buffer, 0, total);
            }
        }
    }
}
