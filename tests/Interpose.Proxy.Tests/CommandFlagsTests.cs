using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The README's command-line claims, through the real <c>interpose run</c> process (CI runs these again against the
/// installed native tool): the default listen address, <c>-k</c>, <c>--ignore-hosts</c>, <c>--via</c>, the connection
/// caps, <c>--log-format json</c>, and a graceful SIGTERM with an exchange in flight.
/// </summary>
public sealed class CommandFlagsTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _home = Directory.CreateTempSubdirectory("interpose-flags-").FullName;
    private readonly List<InterposeProcess> _started = [];

    private string Home => Path.Combine(_home, "home");

    private string OriginRootPem
    {
        get
        {
            var path = Path.Combine(_home, "origin-root.pem");
            if (!File.Exists(path))
            {
                File.WriteAllText(path, TestPki.OriginRoot.ExportCertificatePem());
            }

            return path;
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var process in _started)
        {
            // What the command said, to explain a failure.
            foreach (var line in process.StandardError.Concat(process.StandardOutput))
            {
                output.WriteLine(line);
            }

            await process.DisposeAsync();
        }

        Directory.Delete(_home, recursive: true);
    }

    [FreePortFact(8080)]
    public async Task Without_listen_it_listens_on_127_0_0_1_port_8080_only()
    {
        await using var origin = RawOrigin.Recording();
        var proxy = Track(await InterposeProcess.StartWithDefaultListenAsync(Home));

        var listening = await proxy.WaitForLineAsync(l => l.StartsWith("Interpose listening on ", StringComparison.Ordinal));
        var answer = await GetThroughAsync(8080, origin.Port, IPAddress.Loopback);

        Assert.Equal("Interpose listening on 127.0.0.1:8080", listening);
        Assert.StartsWith("HTTP/1.1 200 ", answer.Text, StringComparison.Ordinal);
        Assert.Equal(1, origin.AcceptedConnections);
        Assert.Equal(0, await proxy.TerminateAsync());
    }

    [Fact]
    public async Task Ssl_insecure_logs_its_warning_and_lets_a_bad_origin_certificate_pass()
    {
        await using var origin = await KestrelOrigin.StartAsync(Origins.MapBasics, TestPki.Issue(TestPki.OriginRoot, "elsewhere.test"));
        var checking = Track(await InterposeProcess.StartAsync(Path.Combine(_home, "checking"), "--upstream-ca", OriginRootPem));
        var insecure = Track(await InterposeProcess.StartAsync(Home, "-k", "--upstream-ca", OriginRootPem));

        var warning = await insecure.WaitForLineAsync(l => l.Contains("Origin certificate validation is OFF", StringComparison.Ordinal));
        var refused = await CurlAsync(checking, origin.Url("/hello"));
        var passed = await CurlAsync(insecure, origin.Url("/hello"));

        Assert.StartsWith("warn", warning, StringComparison.Ordinal);
        Assert.DoesNotContain(checking.StandardError.Concat(checking.StandardOutput), l => l.Contains("validation is OFF", StringComparison.Ordinal));
        Assert.Equal(22, refused.ExitCode); // --fail: the proxy's 502
        Assert.True(passed.ExitCode == 0, passed.StandardError);
        Assert.Equal("hello from origin", passed.StandardOutput);
    }

    [Fact]
    public async Task Ignore_hosts_relays_matching_tls_untouched()
    {
        await using var origin = await Origins.StartTlsAsync();
        var proxy = Track(await InterposeProcess.StartAsync(Home, "--ignore-hosts", @"^localhost:\d+$"));

        // Untouched: the client sees the origin's own certificate (it trusts only the origin's root), not a forged one.
        var trustsOrigin = await ProcessResult.RunAsync("curl", ["--silent", "--show-error", "--fail", "--proxy", proxy.Url.ToString(), "--noproxy", "", "--cacert", OriginRootPem, origin.Url("/hello").ToString()]);
        var trustsInterpose = await CurlAsync(proxy, origin.Url("/hello"));

        Assert.True(trustsOrigin.ExitCode == 0, trustsOrigin.StandardError);
        Assert.Equal("hello from origin", trustsOrigin.StandardOutput);
        Assert.Equal(60, trustsInterpose.ExitCode); // curl: peer certificate cannot be authenticated with the given CA
    }

    [Fact]
    public async Task Via_adds_a_via_field_only_when_given()
    {
        await using var origin = await Origins.StartPlainAsync();
        var plain = Track(await InterposeProcess.StartAsync(Path.Combine(_home, "plain")));
        var via = Track(await InterposeProcess.StartAsync(Home, "--via"));

        var without = await CurlAsync(plain, origin.Url("/headers"));
        var with = await CurlAsync(via, origin.Url("/headers"));

        Assert.True(with.ExitCode == 0, with.StandardError);
        Assert.Contains("Via: 1.1 interpose\n", with.StandardOutput, StringComparison.Ordinal);
        Assert.True(without.ExitCode == 0, without.StandardError);
        Assert.DoesNotContain("Via:", without.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--max-connections-per-client", "too many open connections from this client (limit 1)")]
    [InlineData("--max-connections", "too many open connections (limit 1)")]
    public async Task Connection_caps_refuse_the_connection_past_them_with_503(string flag, string reason)
    {
        await using var origin = RawOrigin.Recording();
        var proxy = Track(await InterposeProcess.StartAsync(Home, flag, "1"));
        using var admitted = new TcpClient();
        await admitted.ConnectAsync(IPAddress.Loopback, proxy.Port);
        var held = admitted.GetStream();
        await held.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200 ", await RawOrigin.ReadHeadAsync(held), StringComparison.Ordinal);

        // The per-client cap counts this address only; the total counts everyone: 127.0.0.2 is refused by the total only.
        var sameClient = await GetThroughAsync(proxy.Port, origin.Port, IPAddress.Loopback);
        var otherClient = await GetThroughAsync(proxy.Port, origin.Port, IPAddress.Parse("127.0.0.2"));

        Assert.StartsWith("HTTP/1.1 503 ", sameClient.Text, StringComparison.Ordinal);
        Assert.Contains(reason, sameClient.Text, StringComparison.Ordinal);
        Assert.StartsWith(flag == "--max-connections" ? "HTTP/1.1 503 " : "HTTP/1.1 200 ", otherClient.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Log_format_json_writes_each_event_as_one_json_object()
    {
        await using var origin = await Origins.StartPlainAsync();
        var proxy = Track(await InterposeProcess.StartAsync(Home, "--log-format", "json"));

        var curl = await CurlAsync(proxy, origin.Url("/hello"));
        var line = await proxy.WaitForLineAsync(l => l.Contains("\"EventId\":1,", StringComparison.Ordinal));
        Assert.Equal(0, await proxy.TerminateAsync());

        Assert.True(curl.ExitCode == 0, curl.StandardError);
        using (var exchange = JsonDocument.Parse(line))
        {
            var root = exchange.RootElement;
            Assert.Equal(1, root.GetProperty("EventId").GetInt32());
            Assert.Equal("Information", root.GetProperty("LogLevel").GetString());
            Assert.StartsWith("Interpose", root.GetProperty("Category").GetString(), StringComparison.Ordinal);
            Assert.Contains($"GET http://localhost:{origin.Port}/hello -> 200", root.GetProperty("Message").GetString(), StringComparison.Ordinal);
            var state = root.GetProperty("State");
            Assert.Equal("GET", state.GetProperty("Method").GetString());
            Assert.Equal("200", state.GetProperty("Status").ToString());
        }

        // Every line the logger wrote (standard output) is a whole JSON object, start-up and shutdown events included.
        Assert.True(proxy.StandardOutput.Count >= 2, string.Join('\n', proxy.StandardOutput));
        Assert.All(proxy.StandardOutput, l =>
        {
            using var document = JsonDocument.Parse(l);
            Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
            Assert.True(document.RootElement.TryGetProperty("EventId", out _), l);
            Assert.True(document.RootElement.TryGetProperty("Message", out _), l);
        });
    }

    [LinuxFact]
    public async Task Sigterm_lets_an_exchange_in_flight_finish_and_exits_0()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            arrived.TrySetResult();
            await release.Task;
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nfinished"u8.ToArray());
            await RawOrigin.WaitForCloseAsync(stream);
        });
        var proxy = Track(await InterposeProcess.StartAsync(Home));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, proxy.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{origin.Port}/slow HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));
        await arrived.Task.WaitAsync(BoundedRead.Limit);

        // SIGTERM while the origin holds the answer; the origin answers only once the process has begun to stop.
        await proxy.SignalTerminateAsync();
        await proxy.WaitForLineAsync(l => l.StartsWith("Stopping", StringComparison.Ordinal));
        release.SetResult();
        var answer = await RawClient.ReadUntilClosedAsync(stream);
        var exit = await proxy.WaitForExitAsync();

        // The whole answer, then an orderly close (the connection does not outlive the process).
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer.Text, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nfinished", answer.Text, StringComparison.Ordinal);
        Assert.False(answer.Reset);
        Assert.Equal(0, exit);
        // Finished before the 10 s deadline: the deadline's warning (event 103) was not needed.
        Assert.DoesNotContain(proxy.StandardOutput.Concat(proxy.StandardError), l => l.Contains("Shutdown deadline passed", StringComparison.Ordinal));
    }

    private InterposeProcess Track(InterposeProcess process)
    {
        _started.Add(process);
        return process;
    }

    private static Task<ProcessResult> CurlAsync(InterposeProcess proxy, Uri url) =>
        ProcessResult.RunAsync("curl", ["--silent", "--show-error", "--fail", "--proxy", proxy.Url.ToString(), "--noproxy", "", "--cacert", proxy.CaPemPath, url.ToString()]);

    /// <summary>One GET with Connection: close to the proxy on <paramref name="proxyPort"/>, from <paramref name="from"/>.</summary>
    private static async Task<ConnectionEnd> GetThroughAsync(int proxyPort, int originPort, IPAddress from)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(IPAddress.Loopback, proxyPort);
        await using var stream = new NetworkStream(socket);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://localhost:{originPort}/ HTTP/1.1\r\nHost: localhost:{originPort}\r\nConnection: close\r\n\r\n"));
        return await RawClient.ReadUntilClosedAsync(stream);
    }
}
