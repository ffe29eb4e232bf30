using System.Net;
using System.Net.Http;
using System.Text;
using Interpose.Proxy.Tests.Http2;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// What a hook may set on the status line and what is refused: a status or reason phrase that cannot be sent fails
/// the exchange with a 502 naming the addon, as a hook that throws does; a status that forbids content ends the
/// response at its head, whatever body the origin sent (RFC 9112 §6.3).
/// </summary>
public sealed class HookEditTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(204)]
    [InlineData(304)]
    public async Task A_hook_that_makes_a_response_bodiless_sends_no_body_and_the_next_response_on_the_connection_is_intact(int status)
    {
        // RFC 9110 §15.3.5, §15.4.5: a 204 or 304 ends at its head. The origin's body, relayed after it, would be read
        // by this keep-alive client as the answer to its next request.
        await using var origin = AnsweringOrigin();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnResponseHeaders = e =>
            {
                if (e.Request.Path == "/first")
                {
                    e.Response!.StatusCode = status;
                }
            },
        }));
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Get(origin.Port, "/first"));
        var first = await RawOrigin.ReadHeadAsync(client);
        await client.WriteAsync(Get(origin.Port, "/second"));
        var second = await RawOrigin.ReadHeadAsync(client);

        Assert.StartsWith($"HTTP/1.1 {status} ", first, StringComparison.Ordinal);
        Assert.DoesNotContain("Connection: close", first, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", second, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 17\r\n", second, StringComparison.Ordinal);
        Assert.Equal("answer to /second", await RawClient.ReadAsciiAsync(client, 17));

        // The first origin connection still held the unread body: it was not given to the second request.
        Assert.Equal(2, origin.AcceptedConnections);
    }

    [Theory]
    [InlineData(false, 100)]
    [InlineData(false, 103)]
    [InlineData(true, 103)]
    [InlineData(true, 99)]
    [InlineData(true, 600)]
    public async Task A_status_that_is_not_final_is_refused_with_a_502_naming_the_addon(bool buffered, int status)
    {
        // A 1xx would be taken as interim, and the next response on the connection as this one's answer (RFC 9110
        // §15.2); 99 and 600 cannot be written at all.
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            DisplayName = "StatusSetter",
            OnResponseHeaders = buffered ? e => e.Response!.BufferBody = true : e => e.Response!.StatusCode = status,
            OnResponse = buffered ? e => e.Response!.StatusCode = status : null,
        }));
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync(origin.Url("/hello")).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var hook = buffered ? "ResponseAsync" : "ResponseHeadersAsync";
        Assert.Contains($"addon StatusSetter failed in {hook}: A final status code (200-599) is required.", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("OK\r\nX-Injected: 1")]
    [InlineData("OK\n")]
    [InlineData("O\0K")]
    [InlineData("Ok \u0100")]
    public async Task A_reason_phrase_that_cannot_be_sent_is_refused_with_a_502_naming_the_addon(string reason)
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            DisplayName = "ReasonSetter",
            OnResponse = e => e.Response!.ReasonPhrase = reason,
        }));
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Get(origin.Port, "/hello"));
        var answer = (await RawClient.ReadUntilClosedAsync(client)).Text;

        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("addon ReasonSetter failed in ResponseAsync: The reason phrase must not contain", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Injected", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_status_that_is_not_final_is_refused_toward_an_HTTP2_client_too()
    {
        // RFC 9113 §8.1: a HEADERS frame with a 1xx :status is interim; the client would wait for another.
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.Addons.Add(new Hooks { DisplayName = "StatusSetter", OnResponse = e => e.Response!.StatusCode = 103 });
        });
        using var client = proxy.CreateClient();

        using var request = new HttpRequestMessage(HttpMethod.Get, origin.Url("/hello")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await client.SendAsync(request).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("addon StatusSetter failed in ResponseAsync", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("G ET", null)]
    [InlineData("GET\r\nX-Injected: 1", null)]
    [InlineData("GET\0", null)]
    [InlineData(null, "/a b")]
    [InlineData(null, "/a\r\nx-injected: 1")]
    [InlineData(null, "/a\0")]
    [InlineData(null, "/caf\u00e9")]
    public async Task A_method_or_path_that_is_not_sendable_is_refused_before_an_HTTP2_origin_sees_it(string? method, string? path)
    {
        // RFC 9113 §8.3.1: HPACK would carry these as :method and :path, where HTTP/1.1 could not write them.
        var requests = 0;
        await using var origin = new RawH2Origin(async (connection, stream, _) =>
        {
            Interlocked.Increment(ref requests);
            await connection.RespondAsync(stream, 200, "reached");
        });
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.UpstreamHttp2PriorKnowledge = true;
            o.Addons.Add(new Hooks
            {
                DisplayName = "Rewriter",
                OnRequest = e =>
                {
                    if (method is not null)
                    {
                        e.Request.Method = method;
                    }

                    if (path is not null)
                    {
                        e.Request.Path = path;
                    }
                },
            });
        });
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync(origin.Url("/hello")).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var why = method is not null ? "The method must be a token" : "The path must be non-empty, without spaces";
        Assert.Contains($"addon Rewriter failed in RequestAsync: {why}", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, Volatile.Read(ref requests));
    }

    [Theory]
    [InlineData("a b", null)]
    [InlineData("x\r\ny", null)]
    [InlineData("x\0y", null)]
    [InlineData("x/y", null)]
    [InlineData("user@x", null)]
    [InlineData("[::1]", null)]
    [InlineData("caf\u00e9", null)]
    [InlineData(null, 0)]
    [InlineData(null, 65536)]
    public async Task A_host_or_port_that_cannot_name_an_origin_is_refused_before_it_is_resolved(string? host, int? port)
    {
        // RFC 3986 §3.2.2: without a Host field, the host is the HTTP/2 :authority (RFC 9113 §8.3.1); it is also the SNI
        // and what the resolver is asked. The resolver here answers loopback for any name, so a host the setter let
        // through would reach this origin (and be recorded) without any query leaving the machine.
        var requests = 0;
        var resolved = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var origin = new RawH2Origin(async (connection, stream, _) =>
        {
            Interlocked.Increment(ref requests);
            await connection.RespondAsync(stream, 200, "reached");
        });
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.UpstreamHttp2PriorKnowledge = true;
            o.Resolver = (name, _) =>
            {
                resolved.Enqueue(name);
                return ValueTask.FromResult(new[] { IPAddress.Loopback });
            };
            o.Addons.Add(new Hooks
            {
                DisplayName = "Rerouter",
                OnRequest = e =>
                {
                    if (host is not null)
                    {
                        e.Request.Host = host;
                    }

                    if (port is { } p)
                    {
                        e.Request.Port = p;
                    }
                },
            });
        });
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync(origin.Url("/hello")).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var why = host is not null ? "The host must be a DNS name" : "The port must be 1 to 65535.";
        Assert.Contains($"addon Rerouter failed in RequestAsync: {why}", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, Volatile.Read(ref requests));
        Assert.Empty(resolved);
    }

    [Theory]
    [InlineData("::1", "[::1]:8080")]
    [InlineData("xn--caf-dma.example", "xn--caf-dma.example:8080")]
    [InlineData("under_score.test", "under_score.test:8080")]
    public void The_host_setter_takes_an_IPv6_address_and_A_labels(string host, string authority)
    {
        var request = new HttpRequest("GET", new Uri("http://localhost:8080/")) { Host = host };

        Assert.Equal(authority, request.Authority);
    }

    [Theory]
    [InlineData("G ET", "http://localhost:8080/")]
    [InlineData("GET\r\nX-Injected: 1", "http://localhost:8080/")]
    [InlineData("GET", "http://localhost:0/")]
    public void The_public_constructor_checks_the_method_and_port_as_the_setters_do(string method, string url)
    {
        // A request built by hand reaches the pipeline without a parser's checks: the constructor is the setters' twin.
        Assert.ThrowsAny<ArgumentException>(() => new HttpRequest(method, new Uri(url)));
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("127.0.0.1")]
    public async Task A_host_that_names_an_origin_is_taken(string host)
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks { OnRequest = e => e.Request.Host = host }));
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync(origin.Url("/hello")).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData(2, 0)]
    [InlineData(0, 9)]
    [InlineData(1, 2)]
    [InlineData(3, 0)]
    public async Task A_response_version_that_cannot_be_written_is_refused_with_a_502_naming_the_addon(int major, int minor)
    {
        // RFC 9112 §4: the streamed head is written with the response's version once the response counts as started;
        // one the status line cannot carry left the client with no answer at all.
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            DisplayName = "VersionSetter",
            OnResponseHeaders = e => e.Response!.Version = new Version(major, minor),
        }));
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Get(origin.Port, "/hello"));
        var answer = (await RawClient.ReadUntilClosedAsync(client)).Text;

        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("addon VersionSetter failed in ResponseHeadersAsync: A response's version must be 1.0 or 1.1", answer, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 9)]
    [InlineData(1, 2)]
    [InlineData(3, 0)]
    public async Task A_request_version_that_cannot_be_written_is_refused_before_the_origin_sees_it(int major, int minor)
    {
        var requests = 0;
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            Interlocked.Increment(ref requests);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nreached"u8.ToArray());
        });
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            DisplayName = "VersionSetter",
            OnRequest = e => e.Request.Version = new Version(major, minor),
        }));
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync(new Uri($"http://localhost:{origin.Port}/hello")).WaitAsync(BoundedRead.Limit);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("addon VersionSetter failed in RequestAsync: A request's version must be 1.0, 1.1 or 2.0", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, Volatile.Read(ref requests));
    }

    [Fact]
    public async Task A_response_version_of_1_0_goes_on_the_status_line()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnResponseHeaders = e => e.Response!.Version = HttpVersion.Version10,
        }));
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Get(origin.Port, "/hello"));
        var head = await RawOrigin.ReadHeadAsync(client);

        Assert.StartsWith("HTTP/1.0 200 ", head, StringComparison.Ordinal);
    }

    private static byte[] Get(int port, string path) =>
        Encoding.ASCII.GetBytes($"GET http://localhost:{port}{path} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n");

    /// <summary>Answers every request on a connection with "answer to PATH", in Content-Length framing, until it closes.</summary>
    private static RawOrigin AnsweringOrigin() => new(async stream =>
    {
        while (true)
        {
            var head = await RawOrigin.ReadHeadAsync(stream);
            var body = "answer to " + head.Split(' ')[1];
            await stream.WriteAsync(Encoding.Latin1.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\n\r\n{body}"));
        }
    });
}
