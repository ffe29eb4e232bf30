using System.Net;
using System.Net.Http;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Core.Http2;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// The HTTP/2 origin side: streams multiplexed on pooled origin connections, the origin's stream limit, GOAWAY and
/// REFUSED_STREAM retries (RFC 9113 §8.7), hooks per stream, and one slow stream not stalling the others.
/// </summary>
public sealed class Http2UpstreamTests(ITestOutputHelper output)
{
    private const int BigBodyBytes = 8 * 1024 * 1024;

    [Fact]
    public async Task Each_client_keeps_its_protocol_to_the_same_origin_and_the_connections_do_not_mix()
    {
        // An origin that speaks both (Kestrel over TLS): the h2 client's requests reach it over HTTP/2, the HTTP/1.1
        // client's over HTTP/1.1, alternately, so a pooled connection of one kind is there when the other asks.
        await using var origin = await Origins.StartTlsAsync();
        var servers = new System.Collections.Concurrent.ConcurrentBag<(Version Client, long Server)>();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.Addons.Add(new Hooks { OnDone = e => servers.Add((e.ClientVersion, e.Server!.Id)) });
        });
        using var h2 = proxy.CreateClient();
        using var h1 = proxy.CreateClient();

        for (var i = 0; i < 2; i++)
        {
            using var over2 = H2(HttpMethod.Post, origin.Url("/echo"));
            over2.Content = new StringContent("2");
            using var response2 = await h2.SendAsync(over2);
            Assert.Equal("HTTP/2", response2.Headers.GetValues("X-Request-Protocol").Single());

            using var over1 = new HttpRequestMessage(HttpMethod.Post, origin.Url("/echo")) { Content = new StringContent("1") };
            using var response1 = await h1.SendAsync(over1);
            Assert.Equal(HttpVersion.Version11, response1.Version);
            Assert.Equal("HTTP/1.1", response1.Headers.GetValues("X-Request-Protocol").Single());
        }

        // Two origin connections, one per protocol, each reused by its own kind only.
        var byClient = servers.GroupBy(s => s.Client).ToDictionary(g => g.Key, g => g.Select(s => s.Server).Distinct().Single());
        Assert.NotEqual(byClient[HttpVersion.Version20], byClient[HttpVersion.Version11]);
    }

    [Fact]
    public async Task A_stream_above_a_GOAWAY_last_stream_id_is_retried_on_a_new_connection()
    {
        var firstSeen = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawH2Origin(async (connection, stream, path) =>
        {
            if (connection.Index == 1 && path == "/a")
            {
                // Held until /b arrives on the same connection.
                firstSeen.TrySetResult(stream);
                return;
            }

            if (connection.Index == 1 && path == "/b")
            {
                // RFC 9113 §6.8: /b's stream is above the last id, so it was not processed; /a still completes.
                var a = await firstSeen.Task;
                await connection.GoAwayAsync(lastStreamId: a);
                await connection.RespondAsync(a, 200, "conn1 /a");
                return;
            }

            await connection.RespondAsync(stream, 200, $"conn{connection.Index} {path}");
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        using var client = proxy.CreateClient();

        var first = client.GetStringAsync(origin.Url("/a"));
        await firstSeen.Task.WaitAsync(BoundedRead.Limit);
        var second = await client.GetStringAsync(origin.Url("/b")).WaitAsync(BoundedRead.Limit);

        Assert.Equal("conn2 /b", second);
        Assert.Equal("conn1 /a", await first.WaitAsync(BoundedRead.Limit));
        Assert.Equal(2, origin.Accepted);
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("POST")]
    public async Task A_refused_stream_is_retried_whatever_the_method(string method)
    {
        // RFC 9113 §8.7: REFUSED_STREAM means "closed prior to any processing", so even a POST may go again.
        var refusals = 0;
        await using var origin = new RawH2Origin(async (connection, stream, path) =>
        {
            if (Interlocked.Increment(ref refusals) == 1)
            {
                await connection.ResetAsync(stream, Http2ErrorCode.RefusedStream);
                return;
            }

            await connection.RespondAsync(stream, 200, $"conn{connection.Index} stream {stream}");
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        var retries = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var listener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.upstream.retries", "reason", retries);
        using var client = proxy.CreateClient();

        using var request = new HttpRequestMessage(new HttpMethod(method), origin.Url("/x"));
        using var response = await client.SendAsync(request).WaitAsync(BoundedRead.Limit);

        Assert.Equal("conn1 stream 3", await response.Content.ReadAsStringAsync());
        Assert.Equal(2, Volatile.Read(ref refusals));
        Assert.Equal(["not_processed"], retries);
    }

    [Theory]
    [InlineData("GET", true)]
    [InlineData("DELETE", true)]
    [InlineData("POST", false)]
    [InlineData("PATCH", false)]
    public async Task A_stream_reset_with_INTERNAL_ERROR_on_a_reused_connection_is_sent_again_only_when_idempotent(string method, bool retried)
    {
        // INTERNAL_ERROR, unlike REFUSED_STREAM, says nothing about whether the origin processed the request: only an
        // idempotent one may be sent again (RFC 9110 §9.2.2; RFC 9113 §8.7).
        var resets = 0;
        await using var origin = new RawH2Origin(async (connection, stream, path) =>
        {
            if (path == "/reset" && Interlocked.Increment(ref resets) == 1)
            {
                await connection.ResetAsync(stream, Http2ErrorCode.InternalError);
                return;
            }

            await connection.RespondAsync(stream, 200, $"conn{connection.Index} {path}");
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        using var client = proxy.CreateClient();
        // The first stream opens the connection; the next one runs on a reused connection.
        Assert.Equal("conn1 /warm", await client.GetStringAsync(origin.Url("/warm")).WaitAsync(BoundedRead.Limit));

        using var request = new HttpRequestMessage(new HttpMethod(method), origin.Url("/reset"));
        using var response = await client.SendAsync(request).WaitAsync(BoundedRead.Limit);

        var body = await response.Content.ReadAsStringAsync();
        if (retried)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("conn1 /reset", body);
            Assert.Equal(2, Volatile.Read(ref resets));
        }
        else
        {
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
            Assert.Contains("(InternalError)", body, StringComparison.Ordinal);
            Assert.Contains($"the {method} request may have reached the origin", body, StringComparison.Ordinal);
            Assert.Equal(1, Volatile.Read(ref resets));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Request_trailers_over_the_origins_header_list_size_are_never_sent_and_the_client_gets_502(bool buffered)
    {
        // RFC 9113 §6.5.2: SETTINGS_MAX_HEADER_LIST_SIZE bounds every field section, trailers too.
        const uint Limit = 1024;
        var heads = new System.Collections.Concurrent.ConcurrentQueue<(int Stream, string Path)>();
        await using var origin = new RawH2Origin((connection, stream, path) =>
        {
            heads.Enqueue((stream, path));
            // The trailers' HEADERS (no :path) would complete the request: answered, so that a proxy sending them
            // anyway shows as a 200 rather than a wait.
            return path == "/upload" ? Task.CompletedTask : connection.RespondAsync(stream, 200, "trailers arrived");
        }, maxHeaderListSize: Limit);
        var done = new TaskCompletionSource<ExchangeError?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.UpstreamHttp2PriorKnowledge = true;
            o.Addons.Add(new Hooks
            {
                // A hook that wants the whole body: the trailers are in hand before anything is sent.
                OnRequestHeaders = e => e.Request.BufferBody = buffered,
                OnDone = e => done.TrySetResult(e.Error),
            });
        });
        await using var client = await RawClient.ConnectAsync(proxy);

        // An HTTP/1.1 client's chunked body with a trailer section as large as the limit (RFC 9112 §7.1.2).
        await client.WriteAsync(System.Text.Encoding.ASCII.GetBytes(
            $"POST http://localhost:{origin.Port}/upload HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nTransfer-Encoding: chunked\r\n\r\n"
            + $"5\r\nhello\r\n0\r\nx-big: {new string('a', (int)Limit)}\r\n\r\n"));
        var head = await RawOrigin.ReadHeadAsync(client);

        Assert.StartsWith("HTTP/1.1 502 ", head, StringComparison.Ordinal);
        var error = await done.Task.WaitAsync(BoundedRead.Limit);
        Assert.Equal(ExchangePhase.Request, error?.Phase);
        Assert.Contains("SETTINGS_MAX_HEADER_LIST_SIZE of 1024", error?.Message, StringComparison.Ordinal);
        if (buffered)
        {
            // Checked before the head left: the origin saw nothing.
            Assert.Empty(heads);
        }
        else
        {
            // The head had left: the stream is reset with CANCEL, so the origin never takes the request as complete.
            var (stream, code) = await origin.ResetReceived.Task.WaitAsync(BoundedRead.Limit);
            Assert.Equal(Http2ErrorCode.Cancel, code);
            Assert.Equal([(stream, "/upload")], heads);
        }
    }

    [Fact]
    public async Task An_origin_response_over_the_header_list_limit_is_a_502_and_the_connection_goes_on()
    {
        await using var origin = new RawH2Origin((connection, stream, path) => path == "/huge"
            // 40 KiB of one field: under the 64 KiB field block limit, over the 32 KiB header list (HPACK bomb budget).
            ? connection.RespondAsync(stream, 200, "never seen", new Interpose.Core.Http.HttpHeader("x-big", new string('a', 40 * 1024)))
            : connection.RespondAsync(stream, 200, $"conn{connection.Index}"));
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        using var client = proxy.CreateClient();

        using (var huge = await client.GetAsync(origin.Url("/huge")).WaitAsync(BoundedRead.Limit))
        {
            Assert.Equal(HttpStatusCode.BadGateway, huge.StatusCode);
        }

        // Only that stream failed: the HPACK table stayed in step and the connection serves the next request.
        Assert.Equal("conn1", await client.GetStringAsync(origin.Url("/small")).WaitAsync(BoundedRead.Limit));
        Assert.Equal(1, origin.Accepted);
    }

    [Fact]
    public async Task A_request_head_over_the_origins_header_list_size_is_answered_431_and_never_sent()
    {
        // RFC 9113 §10.5.1: the origin advertised SETTINGS_MAX_HEADER_LIST_SIZE; a larger head would get a 431 from it.
        const uint Limit = 1024;
        var paths = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var origin = new RawH2Origin((connection, stream, path) =>
        {
            paths.Enqueue(path);
            return connection.RespondAsync(stream, 200, $"conn{connection.Index}");
        }, maxHeaderListSize: Limit);
        var bigDone = new TaskCompletionSource<ExchangeError?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.UpstreamHttp2PriorKnowledge = true;
            o.Addons.Add(new Hooks { OnDone = e => { if (e.Request.Path == "/big") { bigDone.TrySetResult(e.Error); } } });
        });
        using var client = proxy.CreateClient();
        Assert.Equal("conn1", await client.GetStringAsync(origin.Url("/small")).WaitAsync(BoundedRead.Limit));

        // An HTTP/1.1 client: the field alone is as large as the limit, so with the pseudo-fields the list is over it.
        using (var big = new HttpRequestMessage(HttpMethod.Get, origin.Url("/big")))
        {
            big.Headers.Add("x-big", new string('a', (int)Limit));
            using var response = await client.SendAsync(big).WaitAsync(BoundedRead.Limit);
            Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
            Assert.Contains("SETTINGS_MAX_HEADER_LIST_SIZE of 1024", await response.Content.ReadAsStringAsync());
        }

        // The flow records the error with its phase: the request was being sent.
        var error = await bigDone.Task.WaitAsync(BoundedRead.Limit);
        Assert.Equal(ExchangePhase.Request, error?.Phase);

        // An HTTP/2 client gets the same 431 on its stream.
        await using (var h2 = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port))
        {
            await h2.SettledAsync();
            h2.Headers(1, "GET", "/big", endStream: true, ("x-big", new string('b', (int)Limit)));
            await h2.FlushAsync();
            var head = await h2.ReadUntilAsync(f => f.StreamId == 1);
            Assert.Equal(FrameType.Headers, head?.Type);
            Assert.Contains(new Interpose.Core.Http.HttpHeader(":status", "431"), H2RawClient.DecodeFields(head!));
        }

        // Nothing of either reached the origin, and the connection (and its HPACK state) serves the next request.
        Assert.Equal("conn1", await client.GetStringAsync(origin.Url("/after")).WaitAsync(BoundedRead.Limit));
        Assert.Equal(["/small", "/after"], paths);
        Assert.Equal(1, origin.Accepted);
    }

    [Fact]
    public async Task An_origin_that_floods_resets_gets_goaway_enhance_your_calm_and_its_streams_a_502()
    {
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawH2Origin(async (connection, stream, path) =>
        {
            if (connection.Index == 1 && path == "/held")
            {
                // Processed by the origin, never answered: not safe to retry when the connection goes.
                held.TrySetResult();
                return;
            }

            if (connection.Index == 1 && path == "/flood")
            {
                // One more reset than the budget, all at once (the clock does not move): the first resets the stream,
                // the others a closed one.
                await connection.ResetManyAsync(stream, Http2ErrorCode.Cancel, Interpose.Core.Http2.Http2Limits.OriginResetBudgetPerWindow + 1);
                return;
            }

            await connection.RespondAsync(stream, 200, $"conn{connection.Index} {path}");
        });
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.UpstreamHttp2PriorKnowledge = true;
            o.TimeProvider = new ManualClock();
        });
        using var client = proxy.CreateClient();

        var first = client.GetAsync(origin.Url("/held"));
        await held.Task.WaitAsync(BoundedRead.Limit);
        // A POST, which the proxy never retries: a GET reset by the origin may be retried on another connection
        // (RFC 9110 §9.2.2) before the rest of the flood is read, and then succeed there.
        using (var body = new StringContent("flood"))
        using (var flooded = await client.PostAsync(origin.Url("/flood"), body).WaitAsync(BoundedRead.Limit))
        {
            Assert.Equal(HttpStatusCode.BadGateway, flooded.StatusCode);
        }

        Assert.Equal(Http2ErrorCode.EnhanceYourCalm, await origin.GoAwayReceived.Task.WaitAsync(BoundedRead.Limit));
        using (var heldResponse = await first.WaitAsync(BoundedRead.Limit))
        {
            Assert.Equal(HttpStatusCode.BadGateway, heldResponse.StatusCode);
            Assert.Contains("RST_STREAM flood", await heldResponse.Content.ReadAsStringAsync());
        }

        // The connection left the pool: the next request opens another.
        Assert.Equal("conn2 /next", await client.GetStringAsync(origin.Url("/next")).WaitAsync(BoundedRead.Limit));
    }

    [Fact]
    public async Task A_full_origin_connection_makes_the_proxy_open_another()
    {
        const int Requests = 3;
        var seen = 0;
        var allArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawH2Origin(async (connection, stream, path) =>
        {
            // Nothing is answered until every request arrived: with one stream per connection, that takes three.
            if (Interlocked.Increment(ref seen) == Requests)
            {
                allArrived.TrySetResult();
            }

            await allArrived.Task;
            await connection.RespondAsync(stream, 200, $"conn{connection.Index}");
        }, maxConcurrentStreams: 1);
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        using var client = proxy.CreateClient();

        var bodies = await Task.WhenAll(Enumerable.Range(0, Requests).Select(i => client.GetStringAsync(origin.Url("/r" + i)))).WaitAsync(BoundedRead.Limit);

        Assert.Equal(["conn1", "conn2", "conn3"], bodies.Order());
        Assert.Equal(Requests, origin.Accepted);
    }

    [Fact]
    public async Task An_idle_origin_connection_that_does_not_answer_a_PING_is_closed_and_not_reused()
    {
        var clock = new ManualClock();
        await using var origin = new RawH2Origin((connection, stream, path) => connection.RespondAsync(stream, 200, $"conn{connection.Index}"), answerPings: false);
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.UpstreamHttp2PriorKnowledge = true;
            o.TimeProvider = clock;
            // Durations no other timer of the exchange uses, so that the clock can tell the PING timers apart.
            o.Timeouts.Connect = o.Timeouts.TlsHandshake = TimeSpan.FromSeconds(7);
            o.Timeouts.RequestHead = TimeSpan.FromSeconds(25);
            o.Timeouts.UpstreamIdle = TimeSpan.FromSeconds(100); // the pool's sweep runs every half of it
        });
        using var client = proxy.CreateClient();
        Assert.Equal("conn1", await client.GetStringAsync(origin.Url("/a")).WaitAsync(BoundedRead.Limit));

        // Idle: a PING after the delay; no ACK within the timeout: the connection is dead and closed.
        await clock.ArmedAsync(Http2UpstreamConnection.PingDelay).WaitAsync(BoundedRead.Limit);
        clock.Advance(Http2UpstreamConnection.PingDelay);
        await origin.PingSeen.Task.WaitAsync(BoundedRead.Limit);
        await clock.ArmedAsync(Http2UpstreamConnection.PingTimeout).WaitAsync(BoundedRead.Limit);
        clock.Advance(Http2UpstreamConnection.PingTimeout);
        await origin.ClosedByProxy.Task.WaitAsync(BoundedRead.Limit);

        Assert.Equal("conn2", await client.GetStringAsync(origin.Url("/b")).WaitAsync(BoundedRead.Limit));
    }

    [Fact]
    public async Task Hooks_modify_answer_and_kill_per_stream_over_an_h2_origin()
    {
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = await KestrelOrigin.StartAsync(
            app =>
            {
                Origins.MapBasics(app);
                app.MapGet("/slow", async (HttpContext context) =>
                {
                    await context.Response.WriteAsync("first part");
                    await context.Response.Body.FlushAsync();
                    try
                    {
                        await Task.Delay(Timeout.Infinite, context.RequestAborted);
                    }
                    catch (OperationCanceledException)
                    {
                        aborted.TrySetResult();
                    }
                });
            },
            TestPki.Issue(TestPki.OriginRoot, "localhost"),
            protocols: HttpProtocols.Http2);
        var hooks = new Hooks
        {
            OnRequestHeaders = e => e.Request.Headers.Add("X-Hooked", "stream " + e.StreamId.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            OnRequest = e =>
            {
                if (e.Request.Path == "/synthetic")
                {
                    e.Respond(HttpResponse.Text(202, "made by a hook"));
                }
            },
            OnResponseHeaders = e =>
            {
                if (e.Request.Path == "/slow")
                {
                    e.Kill();
                }
            },
        };
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.Addons.Add(hooks);
        });
        using var client = proxy.CreateClient();

        // Modified: the origin (HTTP/2, so field names arrive lowercase) sees the hook's field.
        var headers = await (await client.SendAsync(H2(HttpMethod.Get, origin.Url("/headers")))).Content.ReadAsStringAsync();
        Assert.Contains("x-hooked: stream 1\n", headers, StringComparison.Ordinal);

        // Answered by the hook: the origin is not asked.
        using (var synthetic = await client.SendAsync(H2(HttpMethod.Get, origin.Url("/synthetic"))))
        {
            Assert.Equal(HttpStatusCode.Accepted, synthetic.StatusCode);
            Assert.Equal("made by a hook", await synthetic.Content.ReadAsStringAsync());
        }

        // Killed after the origin's head: the client's stream is reset, and so is the origin's (RST_STREAM CANCEL).
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.SendAsync(H2(HttpMethod.Get, origin.Url("/slow"))));
        await aborted.Task.WaitAsync(BoundedRead.Limit);

        // The connection goes on: another stream works after the kill.
        using var echo = H2(HttpMethod.Post, origin.Url("/echo"));
        echo.Content = new StringContent("still here");
        using var response = await client.SendAsync(echo);
        Assert.Equal("HTTP/2", response.Headers.GetValues("X-Request-Protocol").Single());
        Assert.Equal("still here", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_stream_whose_client_does_not_read_does_not_stall_the_others()
    {
        await using var origin = await KestrelOrigin.StartAsync(
            app =>
            {
                Origins.MapBasics(app);
                app.MapGet("/big", async (HttpContext context) =>
                {
                    var chunk = new byte[64 * 1024];
                    context.Response.ContentLength = BigBodyBytes;
                    for (var sent = 0; sent < BigBodyBytes; sent += chunk.Length)
                    {
                        await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                    }
                });
            },
            TestPki.Issue(TestPki.OriginRoot, "localhost"),
            protocols: HttpProtocols.Http2);
        var servers = new System.Collections.Concurrent.ConcurrentBag<long>();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.Addons.Add(new Hooks { OnResponseHeaders = e => servers.Add(e.Server!.Id) });
        });
        using var client = proxy.CreateClient();

        // 8 MiB that nobody reads: far more than the stream's window (256 KiB) and the connection's (1 MiB).
        using var big = await client.SendAsync(H2(HttpMethod.Get, origin.Url("/big")), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, big.StatusCode);

        // Meanwhile, other streams on the same origin connection still flow.
        for (var i = 0; i < 5; i++)
        {
            var hello = await client.SendAsync(H2(HttpMethod.Get, origin.Url("/hello"))).WaitAsync(BoundedRead.Limit);
            Assert.Equal("hello from origin", await hello.Content.ReadAsStringAsync());
        }

        Assert.Single(servers.Distinct());

        // And the stalled one completes once read.
        var body = await (await big.Content.ReadAsStreamAsync()).DrainBoundedAsync();
        Assert.Equal(BigBodyBytes, body);
    }

    [Fact]
    public async Task DATA_beyond_a_list_form_content_length_of_the_origin_never_reach_the_client()
    {
        // RFC 9113 §8.1.1: the DATA must add up to the content-length; "5, 5" is 5 (RFC 9110 §8.6) for this check as for
        // the HTTP/1.1 side, so the five octets after it are a malformed response, not a body of ten.
        await using var origin = new RawH2Origin((connection, stream, _) =>
            connection.RespondAsIsAsync(stream, "helloworld"u8.ToArray(), new HttpHeader(":status", "200"), new HttpHeader("content-length", "5, 5")));
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        var answer = await RawGetAsync(proxy, origin, "/ten");

        Assert.DoesNotContain("world", answer, StringComparison.Ordinal);
        var (_, code) = await origin.ResetReceived.Task.WaitAsync(BoundedRead.Limit);
        Assert.Equal(Http2ErrorCode.ProtocolError, code);
    }

    [Theory]
    [InlineData("5, 6")]
    [InlineData("5, x")]
    [InlineData("05")]
    public async Task An_origin_content_length_that_is_invalid_or_conflicting_is_a_502(string contentLength)
    {
        // RFC 9110 §8.6, RFC 9112 §6.3 item 5: values that differ or are not digits cannot frame the body; RFC 9113 §8.1.1
        // makes the response malformed (a stream error), which the client sees as a 502.
        await using var origin = new RawH2Origin((connection, stream, _) =>
            connection.RespondAsIsAsync(stream, "hello"u8.ToArray(), new HttpHeader(":status", "200"), new HttpHeader("content-length", contentLength)));
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync(origin.Url("/bad")).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var (_, code) = await origin.ResetReceived.Task.WaitAsync(BoundedRead.Limit);
        Assert.Equal(Http2ErrorCode.ProtocolError, code);
    }

    [Fact]
    public async Task A_list_form_content_length_that_matches_the_DATA_is_relayed()
    {
        await using var origin = new RawH2Origin((connection, stream, _) =>
            connection.RespondAsIsAsync(stream, "hello"u8.ToArray(), new HttpHeader(":status", "200"), new HttpHeader("content-length", "5, 5")));
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync(origin.Url("/five")).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("hello", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("HEAD", 200)]
    [InlineData("GET", 204)]
    [InlineData("GET", 304)]
    public async Task A_response_without_content_may_declare_a_length_and_send_no_DATA(string method, int status)
    {
        // RFC 9113 §8.1.1: a response "that is defined to have no content ... might contain a content-length header
        // field with a non-zero value" with no DATA.
        await using var origin = new RawH2Origin((connection, stream, _) =>
            connection.RespondAsIsAsync(stream, [], new HttpHeader(":status", status.ToString(System.Globalization.CultureInfo.InvariantCulture)), new HttpHeader("content-length", "5")));
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        using var client = proxy.CreateClient();

        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), origin.Url("/empty"))).WaitAsync(BoundedRead.Limit);

        Assert.Equal((HttpStatusCode)status, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Trailers_after_a_content_length_body_reach_an_h2_client_as_a_trailing_HEADERS(bool buffered)
    {
        // RFC 9113 §8.1: trailers may follow the DATA whatever the content-length (a gRPC server may declare one).
        // Streamed, or read whole for a hook first: either way they come with the body.
        await using var origin = await KestrelOrigin.StartAsync(
            app => app.MapGet("/sized", async (HttpContext context) =>
            {
                context.Response.ContentLength = 5;
                await context.Response.WriteAsync("hello");
                context.Response.AppendTrailer("grpc-status", "0");
                context.Response.AppendTrailer("x-trailer", "after the length");
            }),
            TestPki.Issue(TestPki.OriginRoot, "localhost"),
            protocols: HttpProtocols.Http2);
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            if (buffered)
            {
                o.Addons.Add(new Hooks { OnResponseHeaders = e => e.Response!.BufferBody = true });
            }
        });
        using var client = proxy.CreateClient();

        using var response = await client.SendAsync(H2(HttpMethod.Get, origin.Url("/sized"))).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("hello", await response.Content.ReadAsStringAsync());
        Assert.Equal("0", response.TrailingHeaders.GetValues("grpc-status").Single());
        Assert.Equal("after the length", response.TrailingHeaders.GetValues("x-trailer").Single());
    }

    [Fact]
    public async Task Trailers_after_a_content_length_body_are_recorded_for_an_h1_client_that_gets_exactly_the_body()
    {
        // The HTTP/1.1 client's head says Content-Length: trailers have no place on its wire (RFC 9112 §7.1.2 carries
        // them only in chunked framing), but the flow keeps them.
        await using var origin = new RawH2Origin((connection, stream, _) =>
            connection.RespondWithTrailersAsync(
                stream, "hello"u8.ToArray(), [new HttpHeader(":status", "200"), new HttpHeader("content-length", "5")], new HttpHeader("grpc-status", "0")));
        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink);
        var done = new TaskCompletionSource<HttpHeaders?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.UpstreamHttp2PriorKnowledge = true;
            o.Addons.Add(recorder);
            o.Addons.Add(new Hooks { OnDone = e => done.TrySetResult(e.Response?.Trailers) });
        });
        var answer = await RawGetAsync(proxy, origin, "/sized");

        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nContent-Length: 5\r\n", answer, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Transfer-Encoding", answer, StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith("\r\n\r\nhello", answer, StringComparison.Ordinal);
        Assert.Equal("0", (await done.Task.WaitAsync(BoundedRead.Limit))?.Get("grpc-status"));
        await recorder.CompleteAsync();
        var flow = Assert.IsType<HttpFlow>(Assert.Single(sink.Flows));
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(flow.Response!.Body.Content.Span));
        Assert.Equal("0", flow.Response.Trailers?.Get("grpc-status"));
    }

    [Fact]
    public async Task Trailers_before_the_DATA_adds_up_to_the_content_length_are_a_malformed_response()
    {
        // RFC 9113 §8.1.1: the trailers end the stream with 3 of 5 declared octets, as a short DATA with END_STREAM
        // would: the stream is reset with PROTOCOL_ERROR and the client never gets a complete response.
        await using var origin = new RawH2Origin((connection, stream, _) =>
            connection.RespondWithTrailersAsync(
                stream, "hel"u8.ToArray(), [new HttpHeader(":status", "200"), new HttpHeader("content-length", "5")], new HttpHeader("grpc-status", "0")));
        await using var proxy = await TestProxy.StartAsync(output, o => o.UpstreamHttp2PriorKnowledge = true);
        var answer = await RawGetAsync(proxy, origin, "/short");

        Assert.DoesNotContain("hello", answer, StringComparison.Ordinal);
        var (_, code) = await origin.ResetReceived.Task.WaitAsync(BoundedRead.Limit);
        Assert.Equal(Http2ErrorCode.ProtocolError, code);
    }

    /// <summary>A GET of <paramref name="path"/> at <paramref name="origin"/> from a raw HTTP/1.1 client through
    /// <paramref name="proxy"/>, with Connection: close: all the client received.</summary>
    private static async Task<string> RawGetAsync(TestProxy proxy, RawH2Origin origin, string path)
    {
        await using var client = await RawClient.ConnectAsync(proxy);
        await client.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"GET {origin.Url(path)} HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"));
        return (await RawClient.ReadUntilClosedAsync(client)).Text;
    }

    private static HttpRequestMessage H2(HttpMethod method, Uri url) =>
        new(method, url) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
}
