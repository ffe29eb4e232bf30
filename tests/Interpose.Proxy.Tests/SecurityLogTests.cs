using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// Each security-relevant log event (docs/security.md, "Log events") fires, with its id, level and the facts an
/// operator needs, when the thing it reports happens.
/// </summary>
public sealed class SecurityLogTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Ssl_insecure_logs_warning_101_at_start()
    {
        var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o => o.SslInsecure = true, logs: logs);

        var entry = await logs.WaitForAsync(101);

        Assert.Equal(LogLevel.Warning, entry.Level);
        Assert.Contains("validation is OFF", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validation_on_does_not_log_101()
    {
        var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, logs: logs);

        // Event 100 (listening) is logged after the start-up checks: by then 101 would have been written.
        await logs.WaitForAsync(100);

        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 101);
    }

    [Fact]
    public async Task A_malformed_request_logs_121_with_the_status()
    {
        var logs = new LogCollector();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, logs: logs);

        var answer = await SendAsync(proxy, $"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
        var entry = await logs.WaitForAsync(121);

        Assert.StartsWith("HTTP/1.1 400 ", answer, StringComparison.Ordinal);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains("answered 400", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_refusing_the_forged_certificate_logs_123_naming_the_host()
    {
        var logs = new LogCollector();
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output, logs: logs);
        // curl checks the certificate inside the handshake (a .NET client on Linux checks it only after the handshake
        // completed) and, not trusting the Interpose CA, aborts it with an alert, as a browser without the CA does.
        var curl = await proxy.CurlAsync(cacert: null, origin.Url("/hello").ToString());
        var entry = await logs.WaitForAsync(123);

        Assert.NotEqual(0, curl.ExitCode);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains("TLS handshake with the client for localhost failed", entry.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("*.localhost", "wildcards are not forged")]
    [InlineData("a234567890123456789012345678901234567890123456789012345678901234.localhost", "a label is longer than 63 characters")]
    public async Task A_server_name_no_certificate_can_be_forged_for_logs_123_counts_a_failed_handshake_and_answers_an_alert(string serverName, string reason)
    {
        var logs = new LogCollector();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, logs: logs);
        var results = new ConcurrentQueue<string>();
        using var handshakes = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.tls.handshakes", "result", results);
        await using var tunnel = await RawClient.TunnelAsync(proxy.Port, "localhost", origin.Port);
        await using var ssl = new SslStream(tunnel);

        // The ClientHello reader takes any printable ASCII name; no leaf is forged for these, so the handshake ends at
        // once, with a fatal internal_error alert (RFC 8446 §6.2) that the client reports as such, not as a connection
        // that broke. The refusal used to escape the handshake's error handling as an internal failure (199).
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }));
        var entry = await logs.WaitForAsync(123);

        Assert.Contains("alert internal error", refused.ToString(), StringComparison.OrdinalIgnoreCase);

        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains($"TLS handshake with the client for {serverName} failed", entry.Message, StringComparison.Ordinal);
        Assert.Contains(reason, entry.Message, StringComparison.Ordinal);
        Assert.Equal(["failed"], results);
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 199);
    }

    [Fact]
    public async Task A_request_head_that_never_ends_logs_125()
    {
        var logs = new LogCollector();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Timeouts.RequestHead = TimeSpan.FromMilliseconds(200), logs: logs);
        await using var client = await RawClient.ConnectAsync(proxy);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost\r\n"));
        var answer = (await RawClient.ReadUntilClosedAsync(client)).Text;
        var entry = await logs.WaitForAsync(125);

        Assert.StartsWith("HTTP/1.1 408 ", answer, StringComparison.Ordinal);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains("request head timed out", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_open_proxy_beyond_loopback_logs_warning_300_naming_the_address()
    {
        var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.ListenEndpoints.Clear();
            o.ListenEndpoints.Add(new IPEndPoint(IPAddress.Any, 0));
            o.AllowOpenProxy = true;
            // Only this machine may use it while the test runs.
            o.AllowedClients.Add(IPNetwork.Parse("127.0.0.0/8"));
        }, logs: logs);

        var entry = await logs.WaitForAsync(300);

        Assert.Equal(LogLevel.Warning, entry.Level);
        Assert.Contains("OPEN PROXY: listening on 0.0.0.0:", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_outside_the_allow_list_logs_301_naming_it()
    {
        var logs = new LogCollector();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.AllowedClients.Add(IPNetwork.Parse("127.0.0.2/32")), logs: logs);

        var answer = await SendFromAsync(proxy, IPAddress.Loopback, $"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost\r\n\r\n");
        var entry = await logs.WaitForAsync(301);

        Assert.True(answer.Unanswered, answer.Text);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains("Refused connection from 127.0.0.1:", entry.Message, StringComparison.Ordinal);
        Assert.Contains("not in the client allow-list", entry.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("per client")]
    [InlineData("total")]
    public async Task A_connection_past_a_limit_logs_warning_302_with_the_scope_and_limit(string scope)
    {
        var logs = new LogCollector();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            if (scope == "total")
            {
                o.MaxConnections = 1;
            }
            else
            {
                o.MaxConnectionsPerClient = 1;
            }
        }, logs: logs);
        var request = $"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost\r\n\r\n";
        await using var admitted = await RawClient.ConnectAsync(proxy);
        await admitted.WriteAsync(Encoding.ASCII.GetBytes(request));
        Assert.StartsWith("HTTP/1.1 200 ", await RawOrigin.ReadHeadAsync(admitted), StringComparison.Ordinal);

        var refused = await SendFromAsync(proxy, IPAddress.Loopback, request);
        var entry = await logs.WaitForAsync(302);

        Assert.StartsWith("HTTP/1.1 503 ", refused.Text, StringComparison.Ordinal);
        Assert.Equal(LogLevel.Warning, entry.Level);
        Assert.Contains($": {scope} connection limit 1 reached", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_request_without_valid_credentials_logs_303_and_one_with_them_does_not()
    {
        var logs = new LogCollector();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Authentication.Add("alice:pw"), logs: logs);
        var credentials = "Basic " + Convert.ToBase64String("alice:pw"u8);

        var good = await SendAsync(proxy, $"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost\r\nProxy-Authorization: {credentials}\r\nConnection: close\r\n\r\n");
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 303);
        var bad = await SendAsync(proxy, $"POST http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost\r\nProxy-Authorization: Basic {Convert.ToBase64String("alice:nope"u8)}\r\n\r\n");
        var entry = await logs.WaitForAsync(303);

        Assert.StartsWith("HTTP/1.1 200 ", good, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 407 ", bad, StringComparison.Ordinal);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains("POST without valid proxy credentials, answered 407", entry.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("nope", entry.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToBase64String("alice:nope"u8), entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connect_to_a_refused_port_logs_304_with_the_port()
    {
        var logs = new LogCollector();
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.AllowedConnectPorts.Add(origin.Port == 443 ? 444 : 443), logs: logs);

        var answer = await SendAsync(proxy, $"CONNECT localhost:{origin.Port} HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n");
        var entry = await logs.WaitForAsync(304);

        Assert.StartsWith("HTTP/1.1 403 ", answer, StringComparison.Ordinal);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains($"CONNECT to port {origin.Port} is not allowed, answered 403", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_origin_certificate_rejected_logs_warning_120_with_the_reason()
    {
        var logs = new LogCollector();
        await using var origin = await KestrelOrigin.StartAsync(Origins.MapBasics, TestPki.Issue(TestPki.OriginRoot, "elsewhere.test"));
        await using var proxy = await TestProxy.StartAsync(output, logs: logs);
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync(origin.Url("/hello"));
        var entry = await logs.WaitForAsync(120);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(LogLevel.Warning, entry.Level);
        Assert.Contains($"localhost:{origin.Port} failed in phase", entry.Message, StringComparison.Ordinal);
        Assert.Contains("name mismatch", entry.Message, StringComparison.Ordinal);
    }

    private static async Task<string> SendAsync(TestProxy proxy, string request)
    {
        await using var client = await RawClient.ConnectAsync(proxy);
        await client.WriteAsync(Encoding.ASCII.GetBytes(request));
        return (await RawClient.ReadUntilClosedAsync(client)).Text;
    }

    private static async Task<ConnectionEnd> SendFromAsync(TestProxy proxy, IPAddress from, string request)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(IPAddress.Loopback, proxy.Port);
        await using var stream = new NetworkStream(socket);
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        }
        catch (IOException)
        {
            // Reset before the request left; what arrived, if anything, is read below.
        }

        return await RawClient.ReadUntilClosedAsync(stream);
    }
}
