using System.Net;
using System.Net.WebSockets;
using System.Runtime.InteropServices;
using System.Text;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>WebSocket messages read from an intercepted, relayed WebSocket and recorded with its flow (RFC 6455, RFC 7692).</summary>
public sealed class WebSocketRecordingTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Messages_both_ways_are_recorded_in_order_with_the_close_while_the_echo_still_works(bool compressed)
    {
        await using var origin = await EchoOriginAsync();
        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink);
        await using (var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(recorder)))
        {
            using var socket = Client(proxy, compressed);
            using var timeout = new CancellationTokenSource(Bound);
            await socket.ConnectAsync(new Uri($"wss://localhost:{origin.Port}/ws"), timeout.Token);

            const string Repeated = "the same words again and again, the same words again and again";
            foreach (var text in new[] { "hello", Repeated, Repeated })
            {
                await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
                Assert.Equal("echo: " + text, await ReceiveTextAsync(socket, timeout.Token));
            }

            // A binary message sent in two fragments comes back whole.
            await socket.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, endOfMessage: false, timeout.Token);
            await socket.SendAsync(new byte[] { 4, 5 }, WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
            var buffer = new byte[16];
            var binary = await socket.ReceiveAsync(buffer, timeout.Token);
            Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, buffer[..binary.Count]);

            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
            Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        }

        await recorder.CompleteAsync();
        var flow = Assert.Single(sink.Flows.Cast<HttpFlow>(), f => f.Response?.StatusCode == 101);
        var webSocket = Assert.IsType<FlowWebSocket>(flow.WebSocket);
        Assert.Null(webSocket.ParseError);
        var data = webSocket.Messages.Where(m => m.Opcode is WebSocketOpcode.Text or WebSocketOpcode.Binary).ToList();
        Assert.Equal(
            ["> hello", "< echo: hello", "> the same", "< echo: the", "> the same", "< echo: the", "> 0102030405", "< 0102030405"],
            data.Select(m => (m.FromClient ? "> " : "< ") + Show(m)));
        Assert.All(data, m => Assert.False(m.IsCompressed));
        Assert.Equal(1000, webSocket.CloseCode);
        Assert.Equal("done", webSocket.CloseReason);
        Assert.True(webSocket.ClosedByClient);
        Assert.Equal(compressed, flow.Response!.Headers.Get("Sec-WebSocket-Extensions")?.Contains("permessage-deflate", StringComparison.Ordinal) ?? false);

        // The filter language reads the messages: ~bq the client's, ~bs the server's.
        Assert.True(FlowFilter.Parse("~websocket & ~bq hello").Matches(flow.AsFilterable()));
        Assert.True(FlowFilter.Parse("~bs \"echo: hello\"").Matches(flow.AsFilterable()));
        Assert.False(FlowFilter.Parse("~bq \"echo: hello\"").Matches(flow.AsFilterable()));
    }

    [Fact]
    public async Task A_websocket_nobody_observes_is_relayed_without_reading_messages()
    {
        await using var origin = await EchoOriginAsync();
        var observed = new ObservedMessages();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new ObserveOnlyPath("/watched", observed)));
        foreach (var path in new[] { "/ws", "/watched" })
        {
            using var socket = Client(proxy, compressed: false);
            using var timeout = new CancellationTokenSource(Bound);
            await socket.ConnectAsync(new Uri($"wss://localhost:{origin.Port}/ws?via={path.TrimStart('/')}"), timeout.Token);
            await socket.SendAsync(Encoding.UTF8.GetBytes(path), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
            Assert.Equal("echo: " + path, await ReceiveTextAsync(socket, timeout.Token));
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
        }

        // Only the observed socket's messages were read (the observer was added for it alone).
        Assert.Contains("> /watched", observed.Seen);
        Assert.DoesNotContain("> /ws", observed.Seen);
    }

    [Fact]
    public void Messages_past_the_content_budget_hold_no_more_memory_than_the_budget()
    {
        // Each message as the reader hands it over: a fresh array of up to a MiB (IWebSocketObserver.MaxContentBytes),
        // which permessage-deflate can make out of a kilobyte on the wire. One array stands for the 200 here.
        var content = new byte[IWebSocketObserver.MaxContentBytes];
        const long Budget = IWebSocketObserver.MaxContentBytes * 3L / 2;
        var recording = new Internal.WebSocketRecording(Budget);
        for (int i = 0; i < 200; i++)
        {
            recording.OnMessage(new FlowWebSocketMessage(FromClient: i % 2 == 0, WebSocketOpcode.Binary, i, content, content.Length));
        }

        var messages = recording.ToFlow().Messages;
        Assert.Equal(200, messages.Count);
        Assert.All(messages, m => Assert.Equal(IWebSocketObserver.MaxContentBytes, m.Length));
        Assert.Equal([IWebSocketObserver.MaxContentBytes, IWebSocketObserver.MaxContentBytes / 2, 0], messages.Take(3).Select(m => m.Content.Length));
        Assert.Equal(Budget, recording.ContentBytes);

        // What each kept message holds on to is its backing array, not its length: no more than it keeps.
        Assert.All(messages, m => Assert.True(BackingBytes(m.Content) <= m.Content.Length, $"{BackingBytes(m.Content)} bytes held for {m.Content.Length} kept"));
    }

    private static long BackingBytes(ReadOnlyMemory<byte> content) =>
        MemoryMarshal.TryGetArray(content, out var segment) ? segment.Array?.Length ?? 0 : content.Length;

    private static string Show(FlowWebSocketMessage message)
    {
        var text = message.Opcode == WebSocketOpcode.Text ? Encoding.UTF8.GetString(message.Content.Span) : Convert.ToHexString(message.Content.Span);
        return text.StartsWith("the same", StringComparison.Ordinal) ? "the same" : text.StartsWith("echo: the", StringComparison.Ordinal) ? "echo: the" : text;
    }

    private static ClientWebSocket Client(TestProxy proxy, bool compressed) => Client(proxy.Url, proxy.Authority.Certificate, compressed);

    /// <summary>A WebSocket client that goes through the proxy at <paramref name="proxy"/> and trusts only <paramref name="ca"/>.</summary>
    internal static ClientWebSocket Client(Uri proxy, System.Security.Cryptography.X509Certificates.X509Certificate2 ca, bool compressed)
    {
        var socket = new ClientWebSocket();
        socket.Options.Proxy = new WebProxy(proxy);
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, errors) => TestProxy.ChainsTo(cert, ca, errors);
        if (compressed)
        {
            socket.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        }

        return socket;
    }

    internal static async Task<string> ReceiveTextAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        var text = new StringBuilder();
        WebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer, cancellationToken);
            text.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
        }
        while (!result.EndOfMessage);

        return text.ToString();
    }

    /// <summary>A Kestrel TLS origin whose /ws echoes text as "echo: ..." and binary as it is, and closes when asked to.</summary>
    internal static Task<KestrelOrigin> EchoOriginAsync() => KestrelOrigin.StartAsync(
        app =>
        {
            app.UseWebSockets();
            app.Map("/ws", async (HttpContext context) =>
            {
                using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { DangerousEnableCompression = true });
                var buffer = new byte[4096];
                while (true)
                {
                    var message = new MemoryStream();
                    WebSocketReceiveResult result;
                    do
                    {
                        result = await socket.ReceiveAsync(buffer, context.RequestAborted);
                        message.Write(buffer, 0, result.Count);
                    }
                    while (!result.EndOfMessage);

                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, result.CloseStatusDescription, context.RequestAborted);
                        return;
                    }

                    var reply = result.MessageType == WebSocketMessageType.Text
                        ? Encoding.UTF8.GetBytes("echo: " + Encoding.UTF8.GetString(message.ToArray()))
                        : message.ToArray();
                    await socket.SendAsync(reply, result.MessageType, endOfMessage: true, context.RequestAborted);
                }
            });
        },
        TestPki.Issue(TestPki.OriginRoot, "localhost"));

    private sealed class ObservedMessages : IWebSocketObserver
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Seen { get; } = new();

        public void OnMessage(FlowWebSocketMessage message)
        {
            if (message.Opcode == WebSocketOpcode.Text)
            {
                Seen.Enqueue((message.FromClient ? "> " : "< ") + Encoding.UTF8.GetString(message.Content.Span));
            }
        }

        public void OnReadStopped(bool fromClient, string reason) => Seen.Enqueue("stopped: " + reason);
    }

    private sealed class ObserveOnlyPath(string via, ObservedMessages observer) : ProxyAddon
    {
        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (exchange.Request.Path.EndsWith("via=" + via.TrimStart('/'), StringComparison.Ordinal))
            {
                exchange.ObserveWebSocket(observer);
            }

            return default;
        }
    }
}
