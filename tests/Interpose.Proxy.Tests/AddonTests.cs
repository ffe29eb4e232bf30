using System.Net;
using System.Net.Http;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>One test per capability of the library API, each through real sockets.</summary>
public sealed class AddonTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Hook_changes_request_head_and_body(bool tls)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnRequestHeaders = e =>
            {
                e.Request.Headers.Add("X-Added", "yes");
                e.Request.BufferBody = true;
            },
            OnRequest = e =>
            {
                e.Request.Method = "PUT";
                e.Request.SetText(e.Request.GetText().ToUpperInvariant() + " and more");
            },
        }));
        using var client = proxy.CreateClient();

        using var response = await client.PostAsync(origin.Url("/echo"), new StringContent("original body"));

        Assert.Equal("PUT", response.Headers.GetValues("X-Method").Single());
        Assert.Equal("ORIGINAL BODY and more", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Header_added_by_hook_reaches_the_origin()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks { OnRequestHeaders = e => e.Request.Headers.Add("X-Added", "yes") }));
        using var client = proxy.CreateClient();

        var headers = await client.GetStringAsync(origin.Url("/headers"));

        Assert.Contains("X-Added: yes\n", headers, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hook_reroutes_to_another_origin()
    {
        await using var real = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnRequest = e =>
            {
                if (e.Request.Host == "api.example.test")
                {
                    e.Request.Host = "localhost";
                    e.Request.Port = real.Port;
                }
            },
        }));
        using var client = proxy.CreateClient();

        Assert.Equal("hello from origin", await client.GetStringAsync("http://api.example.test/hello"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Synthetic_response_never_contacts_the_origin(bool tls)
    {
        await using var origin = new RawOrigin(_ => Task.CompletedTask);
        var counter = new ConnectionCounter();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Addons.Add(counter);
            o.Addons.Add(new Hooks { OnRequest = e => e.Respond(HttpResponse.Json(200, new { mocked = true, path = e.Request.Path })) });
        });
        using var client = proxy.CreateClient();

        using var response = await client.PostAsync($"{(tls ? "https" : "http")}://localhost:{origin.Port}/api/users?id=1", new StringContent("ignored body"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("{\"mocked\":true,\"path\":\"/api/users?id=1\"}", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, origin.AcceptedConnections);
        Assert.Equal(0, counter.ServerConnections);
    }

    [Fact]
    public async Task Kill_closes_the_connection_without_a_response()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks { OnRequest = e => e.Kill() }));
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/hello HTTP/1.1\r\nHost: localhost\r\n\r\n"));

        Assert.Empty(await RawClient.ReadToEndAsync(client));
    }

    [Fact]
    public async Task Kill_with_a_chosen_status_is_a_synthetic_response()
    {
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks { OnRequest = e => e.Respond(HttpResponse.Text(403, "blocked by policy")) }));
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync("http://blocked.test/");

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("blocked by policy", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Buffering_a_request_body_past_the_limit_is_a_clear_error_and_nothing_is_forwarded()
    {
        await using var origin = new RawOrigin(_ => Task.CompletedTask);
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.MaxBufferedBodyBytes = 1000;
            o.Addons.Add(new Hooks { OnRequestHeaders = e => e.Request.BufferBody = true });
        });
        using var client = proxy.CreateClient();

        using var response = await client.PostAsync($"http://localhost:{origin.Port}/", new ByteArrayContent(new byte[5000]));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("buffering limit of 1000 bytes", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, origin.AcceptedConnections);
    }

    [Fact]
    public async Task Buffering_a_response_body_past_the_limit_gives_502()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.MaxBufferedBodyBytes = 1000;
            o.Addons.Add(new Hooks { OnResponseHeaders = e => e.Response!.BufferBody = true });
        });
        using var client = proxy.CreateClient();

        using var response = await client.PostAsync(origin.Url("/echo"), new ByteArrayContent(new byte[5000]));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("buffering limit", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    /// <param name="bug">The transform fails as code with a bug does (not an I/O error).</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_streamed_request_body_whose_send_fails_is_a_502_naming_why_while_the_origin_has_not_answered(bool bug)
    {
        // The origin reads the head and stays silent: only the failed send ends the wait for its response. That send
        // cancels the wait, which must not then be answered as a timeout (504): the send's failure is the answer. The
        // proxy's clock never moves, so no timeout can end the wait instead.
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await RawOrigin.WaitForCloseAsync(stream);
        });
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.TimeProvider = new ManualClock();
            o.Addons.Add(new Hooks
            {
                OnRequestHeaders = e => e.Request.StreamTransform = _ => throw (bug ? new InvalidOperationException("the transform has a bug (test)") : new IOException("the body could not go on (test)")),
            });
        });
        using var client = proxy.CreateClient();

        using var response = await client.PostAsync($"http://localhost:{origin.Port}/upload", new ByteArrayContent(new byte[5000])).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains(bug ? "the transform has a bug (test)" : "the body could not go on (test)", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Content-Length: 1000\r\n", "0123456789")]
    [InlineData("Transfer-Encoding: chunked\r\n", "a\r\n0123456789\r\n")]
    public async Task A_client_that_stops_sending_its_body_gets_a_400_and_the_origin_is_not_blamed(string framing, string part)
    {
        // The origin reads the head and waits: only the client's end of its body ends the exchange.
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await RawOrigin.WaitForCloseAsync(stream);
        });
        var done = new TaskCompletionSource<HttpExchange>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks { OnDone = e => done.TrySetResult(e) }));
        await using var client = (System.Net.Sockets.NetworkStream)await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://localhost:{origin.Port}/upload HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n{framing}\r\n{part}"));
        client.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send); // half-closed: no more body, still reading
        var answer = (await RawClient.ReadUntilClosedAsync(client)).Text;

        Assert.StartsWith("HTTP/1.1 400 ", answer, StringComparison.Ordinal);
        Assert.Contains("the client closed its connection in the middle of the request body", answer, StringComparison.Ordinal);
        var error = (await done.Task.WaitAsync(BoundedRead.Limit)).Error;
        Assert.Equal(ExchangePhase.ClientRequest, error?.Phase);
    }

    [Fact]
    public async Task A_response_transform_with_a_bug_is_logged_with_its_stack_not_only_as_the_origin_failing()
    {
        await using var origin = await Origins.StartPlainAsync();
        var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnResponseHeaders = e => e.Response!.StreamTransform = _ => throw new ArgumentException("the transform has a bug (test)"),
        }), logs: logs);
        using var client = proxy.CreateClient();

        // The head may be out before the body's first chunk fails: the client then sees the connection end.
        try
        {
            (await client.GetAsync(origin.Url("/hello")).WaitAsync(BoundedRead.Limit)).Dispose();
        }
        catch (HttpRequestException)
        {
        }

        var entry = await logs.WaitForAsync(135).WaitAsync(BoundedRead.Limit);
        Assert.Equal(LogLevel.Error, entry.Level);
        Assert.IsType<ArgumentException>(entry.Exception);
        Assert.Contains($"localhost:{origin.Port}", entry.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Streaming_transform_changes_the_body_chunk_by_chunk(bool tls)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        var chunks = 0;
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnResponseHeaders = e => e.Response!.StreamTransform = chunk =>
            {
                Interlocked.Increment(ref chunks);
                return chunk.IsEmpty ? "<end>"u8.ToArray() : Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(chunk.Span).ToUpperInvariant());
            },
        }));
        using var client = proxy.CreateClient();
        var payload = string.Concat(Enumerable.Repeat("abcdefghij", 10_000));

        using var response = await client.PostAsync(origin.Url("/echo"), new StringContent(payload));

        Assert.Equal(payload.ToUpperInvariant() + "<end>", await response.Content.ReadAsStringAsync());
        Assert.True(response.Headers.TransferEncodingChunked);
        Assert.True(chunks >= 2);
    }

    [Fact]
    public async Task Passthrough_decided_from_the_sni_shows_the_origin_certificate()
    {
        await using var origin = await Origins.StartTlsAsync();
        string? sniSeen = null;
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnClientHello = c =>
            {
                sniSeen = c.ClientHello.ServerName;
                if (c.ClientHello.ServerName == "localhost")
                {
                    c.Decision = TlsDecision.Passthrough;
                }
            },
        }));
        using var client = proxy.CreateClient(trustInstead: TestPki.OriginRoot);

        Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));
        Assert.Equal("localhost", sniSeen);
    }

    [Fact]
    public async Task A_throwing_addon_fails_only_its_exchange()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            DisplayName = "Exploding",
            OnRequest = e =>
            {
                if (e.Request.Path.Contains("boom", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException("kaboom");
                }
            },
        }));
        using var client = proxy.CreateClient();

        using var failed = await client.GetAsync(origin.Url("/boom"));
        var ok = await client.GetStringAsync(origin.Url("/hello"));

        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        Assert.Contains("addon Exploding failed in RequestAsync: kaboom", await failed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("hello from origin", ok);
    }

    [Fact]
    public async Task Addons_run_in_order_for_every_hook()
    {
        await using var origin = await Origins.StartPlainAsync();
        var log = new List<string>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Addons.Add(new Recorder("A", log));
            o.Addons.Add(new Recorder("B", log));
            o.Addons.Add(new Hooks { OnDone = _ => done.TrySetResult() });
        });
        using var client = proxy.CreateClient();

        await client.GetStringAsync(origin.Url("/hello"));
        // The client has the response before the proxy's Done hooks run; a stop in between would (rightly) close the
        // origin connection instead of pooling it, so wait for Done to make the order below the only possible one.
        await done.Task;
        client.Dispose();
        await proxy.Server.StopAsync();

        string[] expected =
        [
            "A:ClientConnected", "B:ClientConnected",
            "A:RequestHeaders", "B:RequestHeaders", "A:Request", "B:Request",
            "A:ServerConnecting", "B:ServerConnecting", "A:ServerConnected", "B:ServerConnected",
            "A:ResponseHeaders", "B:ResponseHeaders", "A:Response", "B:Response",
            "A:Done", "B:Done",
            "A:ClientDisconnected", "B:ClientDisconnected",
            "A:ServerDisconnected", "B:ServerDisconnected", // the pooled origin connection, closed when the proxy stops
        ];
        Assert.Equal(expected, log);
    }

    [Fact]
    public async Task Exchange_model_carries_connections_tls_details_and_ordered_timings()
    {
        await using var origin = await Origins.StartTlsAsync();
        var done = new TaskCompletionSource<HttpExchange>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnRequest = e => e.Tags["seen-by"] = "test",
            OnDone = e => done.TrySetResult(e),
        }));
        using var client = proxy.CreateClient();

        using var response = await client.PostAsync(origin.Url("/echo"), new StreamContent(new MemoryStream(new byte[10_000])));
        await response.Content.ReadAsByteArrayAsync();
        var exchange = await done.Task;

        Assert.Equal("localhost", exchange.Client.Sni);
        Assert.Equal($"localhost:{origin.Port}", exchange.Client.ConnectAuthority);
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls13, exchange.Client.TlsVersion);
        Assert.Null(exchange.Client.Alpn); // HttpClient offers no ALPN for HTTP/1.1
        Assert.Equal("http/1.1", exchange.Server!.Alpn); // the proxy offers http/1.1 and Kestrel picks it
        Assert.NotNull(exchange.Server);
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls13, exchange.Server!.TlsVersion);
        Assert.Equal("CN=localhost", exchange.Server.Certificate!.Subject);
        Assert.Equal("localhost", exchange.Server.Sni);
        Assert.Equal("test", exchange.Tags["seen-by"]);
        var t = exchange.Timings;
        long[] ordered = [t.RequestStarted, t.DnsDone, t.Connected, t.TlsDone, t.RequestSent, t.Done];
        Assert.All(ordered, v => Assert.NotEqual(0, v));
        Assert.Equal(ordered.Order(), ordered);
        Assert.True(t.FirstByte >= t.TlsDone && t.FirstByte <= t.Done);
        Assert.True(t.Total > TimeSpan.Zero);
    }

    /// <summary>An addon made of delegates, for tests.</summary>
    private sealed class Recorder(string name, List<string> log) : ProxyAddon
    {
        public override ValueTask ClientConnectedAsync(ClientConnection client, CancellationToken cancellationToken) => Add("ClientConnected");

        public override ValueTask ClientDisconnectedAsync(ClientConnection client, CancellationToken cancellationToken) => Add("ClientDisconnected");

        public override ValueTask ServerConnectingAsync(ServerConnection server, CancellationToken cancellationToken) => Add("ServerConnecting");

        public override ValueTask ServerConnectedAsync(ServerConnection server, CancellationToken cancellationToken) => Add("ServerConnected");

        public override ValueTask ServerDisconnectedAsync(ServerConnection server, CancellationToken cancellationToken) => Add("ServerDisconnected");

        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken) => Add("RequestHeaders");

        public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken) => Add("Request");

        public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken) => Add("ResponseHeaders");

        public override ValueTask ResponseAsync(HttpExchange exchange, CancellationToken cancellationToken) => Add("Response");

        public override ValueTask DoneAsync(HttpExchange exchange, CancellationToken cancellationToken) => Add("Done");

        private ValueTask Add(string hook)
        {
            lock (log)
            {
                log.Add(name + ":" + hook);
            }

            return default;
        }
    }
}
