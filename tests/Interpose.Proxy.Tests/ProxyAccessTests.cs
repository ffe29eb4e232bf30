using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Core.Http;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// Who may use the proxy: Basic proxy authentication checked before any hook or origin, no open proxy by accident,
/// the client allow-list, the CONNECT port allow-list and the connection caps.
/// </summary>
public sealed class ProxyAccessTests(ITestOutputHelper output)
{
    private static void RequireUser(ProxyOptions o) => o.Authentication.Add("alice:s3cret:with-colon");

    private static string Basic(string userColonPassword) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(userColonPassword));

    [Theory]
    [InlineData(null)]
    [InlineData("alice:wrong")]
    [InlineData("mallory:s3cret:with-colon")]
    [InlineData("alice:s3cret")]
    [InlineData("alice:s3cret:with-colon ")]
    public async Task Missing_or_wrong_credentials_get_407_before_any_hook_and_reach_nothing(string? credentials)
    {
        await using var origin = RawOrigin.Recording();
        var hooks = new HookRecorder();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            RequireUser(o);
            o.Addons.Add(hooks);
        });
        await using var client = await RawClient.ConnectAsync(proxy);
        var auth = credentials is null ? "" : $"Proxy-Authorization: {Basic(credentials)}\r\n";

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n{auth}\r\n"));
        var answer = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 407 Proxy Authentication Required\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nProxy-Authenticate: Basic realm=\"Interpose\"", answer, StringComparison.Ordinal);
        Assert.Equal(0, hooks.RequestHeaders);
        Assert.Equal(0, origin.AcceptedConnections);
    }

    [Theory]
    [InlineData("Bearer abc")]
    [InlineData("Basic !!!not-base64")]
    [InlineData("Basic")]
    public async Task Malformed_credentials_get_407(string value)
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, RequireUser);
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nProxy-Authorization: {value}\r\n\r\n"));
        var answer = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 407 ", answer, StringComparison.Ordinal);
        Assert.Equal(0, origin.AcceptedConnections);
    }

    [Fact]
    public async Task Right_credentials_pass_and_are_not_forwarded()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, RequireUser);
        await using var client = await RawClient.ConnectAsync(proxy);

        // The scheme name is case-insensitive (RFC 9110 §11.1).
        var value = "bAsIc " + Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3cret:with-colon"));
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/x HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nProxy-Authorization: {value}\r\nConnection: close\r\n\r\n"));
        var answer = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.StartsWith("GET /x HTTP/1.1\r\n", origin.ReceivedText, StringComparison.Ordinal);
        Assert.DoesNotContain("Proxy-Authorization", origin.ReceivedText, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Checked_credentials_are_removed_before_any_hook_sees_the_request()
    {
        // A request a hook answers itself never reaches the forwarding rules that drop hop-by-hop fields: the proxy's own
        // credentials must be gone before the hooks (and so the recorder, the intercept UI and scripts) see the request.
        var seen = new List<string>();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            RequireUser(o);
            o.Addons.Add(new Hooks
            {
                OnRequestHeaders = e => seen.Add(string.Join("|", e.Request.Headers.Select(h => h.Name))),
                OnRequest = e => e.Respond(new HttpResponse(204, "No Content", HttpVersion.Version11, new HttpHeaders())),
            });
        });
        await using var client = await RawClient.ConnectAsync(proxy);

        var value = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3cret:with-colon"));
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:9/x HTTP/1.1\r\nHost: localhost:9\r\nProxy-Authorization: {value}\r\nConnection: close\r\n\r\n"));
        var answer = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 204 No Content\r\n", answer, StringComparison.Ordinal);
        var names = Assert.Single(seen);
        Assert.Contains("Host", names, StringComparison.Ordinal);
        Assert.DoesNotContain("Proxy-Authorization", names, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Connect_without_credentials_gets_407_and_never_200()
    {
        await using var origin = RawOrigin.Recording();
        var hooks = new HookRecorder();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            RequireUser(o);
            o.Addons.Add(hooks);
        });
        await using var client = await RawClient.ConnectAsync(proxy);

        // A client that does not wait for the answer sends its ClientHello right behind the CONNECT: it must never
        // reach the tunnel's TLS stage.
        byte[] connect = Encoding.ASCII.GetBytes($"CONNECT localhost:{origin.Port} HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n");
        await client.WriteAsync((byte[])[.. connect, .. await Core.Tests.Corpus.TlsHelloCapture.CaptureAsync("localhost", [System.Net.Security.SslApplicationProtocol.Http11])]);
        var answer = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 407 ", answer, StringComparison.Ordinal);
        Assert.DoesNotContain(" 200 ", answer, StringComparison.Ordinal);
        Assert.Equal(0, hooks.ClientHellos);
        Assert.Equal(0, origin.AcceptedConnections);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Curl_with_proxy_user_gets_through_over_http_and_connect(bool tls)
    {
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, RequireUser);

        var right = await proxy.CurlAsync(proxy.CaPemPath, "--fail", "--proxy-user", "alice:s3cret:with-colon", origin.Url("/hello").ToString());
        var wrong = await proxy.CurlAsync(proxy.CaPemPath, "--proxy-user", "alice:nope", "--write-out", "%{http_code}", origin.Url("/hello").ToString());

        Assert.True(right.ExitCode == 0, right.StandardError);
        Assert.Equal("hello from origin", right.StandardOutput);
        if (tls)
        {
            // curl reports the refused CONNECT itself (CURLE_RECV_ERROR) with the proxy's status.
            Assert.Equal(56, wrong.ExitCode);
            Assert.Contains("407", wrong.StandardError, StringComparison.Ordinal);
        }
        else
        {
            Assert.EndsWith("407", wrong.StandardOutput, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Users_file_is_read_and_comments_are_skipped()
    {
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, "# users\n\nbob:pw1\r\ncarol:pw:2\n");
        try
        {
            var authentication = new ProxyAuthentication();
            authentication.AddFromFile(file);

            Assert.Equal(["bob", "carol"], authentication.Users.Select(u => u.UserName));
            Assert.Equal("pw:2", authentication.Users[1].Password);
            await File.WriteAllTextAsync(file, "bob:pw1\nno-colon-here\n");
            var ex = Assert.Throws<FormatException>(() => new ProxyAuthentication().AddFromFile(file));
            Assert.Contains(":2:", ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("no-colon-here", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Listening_beyond_loopback_without_authentication_refuses_to_start()
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => TestProxy.StartAsync(output, o =>
        {
            o.ListenEndpoints.Clear();
            o.ListenEndpoints.Add(new IPEndPoint(IPAddress.Any, 0));
        }));

        Assert.Contains("--allow-open-proxy", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task Listening_beyond_loopback_starts_with_authentication_or_explicit_open_proxy(bool auth, bool open)
    {
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.ListenEndpoints.Clear();
            o.ListenEndpoints.Add(new IPEndPoint(IPAddress.Any, 0));
            o.AllowOpenProxy = open;
            if (auth)
            {
                RequireUser(o);
            }
        });

        Assert.Single(proxy.Server.Endpoints);
    }

    [Fact]
    public async Task Clients_outside_the_allow_list_are_closed_at_accept()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.AllowedClients.Add(IPNetwork.Parse("127.0.0.2/32")));

        var refused = await TryGetAsync(proxy, origin, IPAddress.Loopback);
        var allowed = await TryGetAsync(proxy, origin, IPAddress.Parse("127.0.0.2"));

        Assert.Equal("", refused);
        Assert.StartsWith("HTTP/1.1 200 ", allowed, StringComparison.Ordinal);
        Assert.Equal(1, origin.AcceptedConnections);
    }

    [Fact]
    public async Task Connect_to_a_port_outside_the_allow_list_gets_403()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.AllowedConnectPorts.Add(origin.Port == 443 ? 444 : 443));
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT localhost:{origin.Port} HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));
        var answer = Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 403 Forbidden\r\n", answer, StringComparison.Ordinal);
        Assert.Equal(0, origin.AcceptedConnections);
    }

    [Fact]
    public async Task Connect_to_an_allowed_port_is_established()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.AllowedConnectPorts.Add(origin.Port));

        await using var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: false);
        await tunnel.WriteAsync("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"u8.ToArray());

        Assert.StartsWith("HTTP/1.1 200 ", Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(tunnel)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Past_the_per_client_limit_new_connections_get_503_and_other_clients_are_served()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.MaxConnectionsPerClient = 2);
        await using var first = await OpenServedConnectionAsync(proxy, origin);
        await using var second = await OpenServedConnectionAsync(proxy, origin);

        var third = await TryGetAsync(proxy, origin, IPAddress.Loopback);
        var otherClient = await TryGetAsync(proxy, origin, IPAddress.Parse("127.0.0.2"));

        Assert.StartsWith("HTTP/1.1 503 Service Unavailable\r\n", third, StringComparison.Ordinal);
        Assert.Contains("Retry-After: 1\r\n", third, StringComparison.Ordinal);
        Assert.EndsWith("too many open connections from this client (limit 2); try again later\n", third, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 ", otherClient, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Past_the_total_limit_new_connections_get_503_and_open_ones_go_on()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.MaxConnections = 2);
        await using var first = await OpenServedConnectionAsync(proxy, origin);
        await using var second = await OpenServedConnectionAsync(proxy, origin);

        var third = await TryGetAsync(proxy, origin, IPAddress.Parse("127.0.0.2"));
        await first.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));

        Assert.StartsWith("HTTP/1.1 503 Service Unavailable\r\n", third, StringComparison.Ordinal);
        Assert.EndsWith("too many open connections (limit 2); try again later\n", third, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 ", await RawOrigin.ReadHeadAsync(first), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Past_64_refusals_at_once_further_refused_connections_close_unanswered()
    {
        await using var origin = RawOrigin.Recording();

        // Timers never fire: each refusal lingers (reading what its client sends) until its client closes, so 64 held
        // clients keep the refusal slots taken for as long as the test needs, without racing the linger timeout.
        await using var proxy = await StartOneSlotTimelessAsync();
        await using var admitted = await OpenServedConnectionAsync(proxy, origin);
        var held = new List<Stream>();
        try
        {
            for (var i = 0; i < 64; i++)
            {
                var client = await RawClient.ConnectAsync(proxy);
                held.Add(client);
                Assert.StartsWith("HTTP/1.1 503 ", await RawOrigin.ReadHeadAsync(client), StringComparison.Ordinal);
            }

            var flooded = await TryGetAsync(proxy, origin, IPAddress.Loopback);

            Assert.Equal("", flooded);
        }
        finally
        {
            foreach (var client in held)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_refused_client_that_keeps_sending_is_cut_off_at_the_lingering_close_byte_bound()
    {
        await using var origin = RawOrigin.Recording();

        // Timers never fire: only the byte bound can end the refusal's linger (RFC 9112 §9.6, the rule an answered
        // connection follows), so a client sending twice the bound is reset midway, after the bound was read.
        await using var proxy = await StartOneSlotTimelessAsync();
        await using var admitted = await OpenServedConnectionAsync(proxy, origin);
        await using var refused = await RawClient.ConnectAsync(proxy);
        Assert.StartsWith("HTTP/1.1 503 ", await RawOrigin.ReadHeadAsync(refused), StringComparison.Ordinal);

        var chunk = new byte[64 * 1024];
        long sent = 0;
        var reset = false;
        try
        {
            while (sent < 2 * Internal.LingeringClose.MaxBytes)
            {
                await refused.WriteAsync(chunk);
                sent += chunk.Length;
            }
        }
        catch (IOException)
        {
            reset = true;
        }

        Assert.True(reset, $"the refusal read all {sent} bytes sent after its 503");
        Assert.True(sent >= Internal.LingeringClose.MaxBytes, $"reset after {sent} bytes, before the bound");
    }

    [Fact]
    public async Task Too_long_request_line_gets_414_and_too_many_headers_431_through_a_socket()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Limits = o.Limits with { MaxRequestLineLength = 100, MaxHeaderCount = 5 });

        var longLine = await SendRawAsync(proxy, $"GET http://localhost:{origin.Port}/{new string('a', 200)} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        var manyHeaders = await SendRawAsync(proxy, $"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost\r\n{string.Concat(Enumerable.Range(0, 6).Select(i => $"X-{i}: v\r\n"))}\r\n");

        Assert.StartsWith("HTTP/1.1 414 ", longLine, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 431 ", manyHeaders, StringComparison.Ordinal);
        Assert.Equal(0, origin.AcceptedConnections);
    }

    /// <summary>Opens a keep-alive connection and completes one exchange on it, so it is known to be admitted and open.</summary>
    /// <summary>A proxy that admits one connection and whose timers never fire: a refusal's linger then ends only by
    /// its client or its byte bound.</summary>
    private Task<TestProxy> StartOneSlotTimelessAsync() => TestProxy.StartAsync(output, o =>
    {
        o.MaxConnections = 1;
        o.TimeProvider = new TimersNeverFire();
    });

    private static async Task<Stream> OpenServedConnectionAsync(TestProxy proxy, RawOrigin origin)
    {
        var client = await RawClient.ConnectAsync(proxy);
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200 ", await RawOrigin.ReadHeadAsync(client), StringComparison.Ordinal);
        await RawClient.ReadAsciiAsync(client, 2);
        return client;
    }

    /// <summary>
    /// One GET with Connection: close from <paramref name="from"/>; everything that came back before the connection
    /// ended ("" only when nothing at all came back). A refusal closes with the request unread, which the client may
    /// see as a reset: after a 503 that is still the 503, and only a connection that sent nothing is unanswered.
    /// </summary>
    private static async Task<string> TryGetAsync(TestProxy proxy, RawOrigin origin, IPAddress from)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(IPAddress.Loopback, proxy.Port);
        await using var stream = new NetworkStream(socket);
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"));
        }
        catch (IOException)
        {
            // Reset before the request left (closed at accept); what arrived, if anything, is still read below.
        }

        return (await RawClient.ReadUntilClosedAsync(stream)).Text;
    }

    private static async Task<string> SendRawAsync(TestProxy proxy, string request)
    {
        await using var client = await RawClient.ConnectAsync(proxy);
        await client.WriteAsync(Encoding.Latin1.GetBytes(request));
        return Encoding.Latin1.GetString(await RawClient.ReadToEndAsync(client));
    }

    /// <summary>The system clock, but timers that never fire.</summary>
    private sealed class TimersNeverFire : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new Idle();

        private sealed class Idle : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    private sealed class HookRecorder : ProxyAddon
    {
        private int _requestHeaders;
        private int _clientHellos;

        public int RequestHeaders => Volatile.Read(ref _requestHeaders);

        public int ClientHellos => Volatile.Read(ref _clientHellos);

        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _requestHeaders);
            return default;
        }

        public override ValueTask TlsClientHelloAsync(TlsClientHelloContext context, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _clientHellos);
            return default;
        }
    }
}
