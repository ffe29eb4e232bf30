using System.Net;
using System.Net.Http;
using System.Text.Json;
using Interpose.Core.Tests.Flows;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// <c>interpose run -w FILE</c> and <c>interpose flows ...</c> through the real command: a mix of plain and intercepted
/// HTTPS exchanges recorded, then listed with filters, shown, exported as HAR (validated) and curl, imported back;
/// a SIGKILL mid-recording; a second recorder refused; files that are not flow stores.
/// </summary>
public sealed class FlowStoreCommandTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly CommandSession _session = new(output);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _session.DisposeAsync();

    [Fact]
    public async Task A_WebSockets_messages_are_recorded_shown_and_exported_as_HAR()
    {
        await using var origin = await WebSocketRecordingTests.EchoOriginAsync();
        var proxy = _session.Track(await InterposeProcess.StartAsync(_session.Home, "--upstream-ca", _session.OriginRootPem(), "-w", _session.Store));
        using (var socket = WebSocketRecordingTests.Client(proxy.Url, System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(proxy.CaPemPath), compressed: true))
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await socket.ConnectAsync(new Uri($"wss://localhost:{origin.Port}/ws"), timeout.Token);
            await socket.SendAsync("{\"subscribe\":\"prices\"}"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
            Assert.Equal("echo: {\"subscribe\":\"prices\"}", await WebSocketRecordingTests.ReceiveTextAsync(socket, timeout.Token));
            await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
        }

        Assert.Equal(0, await proxy.TerminateAsync());

        var listed = Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~websocket & ~bq subscribe", "--json")));
        var id = JsonDocument.Parse(listed).RootElement.GetProperty("id").GetString()!;
        var shown = await _session.CliAsync("flows", "show", _session.Store, id);
        Assert.Equal(0, shown.ExitCode);
        Assert.Contains("WebSocket: 4 messages; closed by the client 1000 bye", shown.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("-> text 22b", shown.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("    {\"subscribe\":\"prices\"}", shown.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("<- text 28b", shown.StandardOutput, StringComparison.Ordinal);

        var har = Path.Combine(_session.Dir, "ws.har");
        Assert.Equal(0, (await _session.CliAsync("flows", "export", _session.Store, "--format", "har", "-o", har)).ExitCode);
        using var doc = JsonDocument.Parse(await File.ReadAllBytesAsync(har));
        var messages = doc.RootElement.GetProperty("log").GetProperty("entries")[0].GetProperty("_webSocketMessages");
        Assert.Equal(["send 1 {\"subscribe\":\"prices\"}", "receive 1 echo: {\"subscribe\":\"prices\"}", "send 8 A+hieWU=", "receive 8 A+hieWU="],
            messages.EnumerateArray().Select(m => $"{m.GetProperty("type").GetString()} {m.GetProperty("opcode").GetInt32()} {m.GetProperty("data").GetString()}"));
    }

    [Fact]
    public async Task A_recorded_mix_is_listed_filtered_shown_exported_and_imported_back()
    {
        await using var plain = await KestrelOrigin.StartAsync(CommandSession.MapWithGzip);
        await using var tls = await KestrelOrigin.StartAsync(CommandSession.MapWithGzip, TestPki.Issue(TestPki.OriginRoot, "localhost"));
        var proxy = _session.Track(await InterposeProcess.StartAsync(_session.Home, "--upstream-ca", _session.OriginRootPem(), "-w", _session.Store));
        var closedPort = CommandSession.ClosedPort();
        using (var client = CommandSession.Client(proxy))
        {
            Assert.Equal("hello from origin", await client.GetStringAsync(plain.Url("/hello")));
            Assert.Equal("hello from origin", await client.GetStringAsync(tls.Url("/hello")));
            using var form = new FormUrlEncodedContent([new("payload", "1"), new("name", "a b")]);
            using var posted = await client.PostAsync(tls.Url("/echo"), form);
            Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
            using var gz = await client.GetAsync(tls.Url("/gz"));
            Assert.Equal("gzip", Assert.Single(gz.Content.Headers.ContentEncoding));
            using var missing = await client.GetAsync(tls.Url("/missing"));
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            using var refused = await client.GetAsync(new Uri($"http://localhost:{closedPort}/down"));
            Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
        }

        Assert.Equal(0, await proxy.TerminateAsync());

        var all = await _session.CliAsync("flows", "list", _session.Store);
        Assert.Equal(0, all.ExitCode);
        Assert.Equal(6, CommandSession.Lines(all).Length);
        var notFound = Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~c", "404")));
        Assert.Contains($"GET https://localhost:{tls.Port}/missing -> 404", notFound, StringComparison.Ordinal);
        Assert.Contains("/echo", Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~m POST & ~bq payload"))), StringComparison.Ordinal);
        Assert.Contains("-> error (connect)", Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~e"))), StringComparison.Ordinal);
        Assert.Equal(2, CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~u /hello")).Length);
        Assert.Contains("/gz", Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~bs", "world"))), StringComparison.Ordinal);

        var json = CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "--json")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(6, json.Count);
        Assert.All(json, j => Assert.True(Guid.TryParse(j.GetProperty("id").GetString(), out _)));
        Assert.Equal(["GET", "GET", "POST", "GET", "GET", "GET"], json.Select(j => j.GetProperty("method").GetString()));
        Assert.Equal(tls.Url("/missing").ToString(), json[4].GetProperty("url").GetString());
        Assert.Equal([200, 200, 200, 200, 404], json.Take(5).Select(j => j.GetProperty("status").GetInt32()));
        Assert.Equal(JsonValueKind.Null, json[5].GetProperty("status").ValueKind);

        var post = await _session.CliAsync("flows", "show", _session.Store, json[2].GetProperty("id").GetString()!);
        Assert.Equal(0, post.ExitCode);
        Assert.Contains($"POST https://localhost:{tls.Port}/echo HTTP/1.1", post.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("\npayload: 1\nname: a b\n", post.StandardOutput, StringComparison.Ordinal);
        Assert.Matches(@"Server TLS: TLS 1\.[23] ", post.StandardOutput);
        Assert.Matches(@"Client TLS: TLS 1\.[23] ", post.StandardOutput);
        Assert.Contains("certificate: CN=localhost", post.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Timings (ms after the request head):", post.StandardOutput, StringComparison.Ordinal);
        var gzip = await _session.CliAsync("flows", "show", _session.Store, json[3].GetProperty("id").GetString()!);
        Assert.Contains("(decoded from gzip", gzip.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("{\n  \"hello\": \"world\",\n  \"n\": [\n    1,\n    2\n  ]\n}", gzip.StandardOutput, StringComparison.Ordinal);

        var har = Path.Combine(_session.Dir, "out.har");
        Assert.Equal(0, (await _session.CliAsync("flows", "export", _session.Store, "--format", "har", "-o", har)).ExitCode);
        using (var document = JsonDocument.Parse(await File.ReadAllBytesAsync(har)))
        {
            Assert.Equal(6, document.RootElement.GetProperty("log").GetProperty("entries").GetArrayLength());
        }

        var onlyPost = await _session.CliAsync("flows", "export", _session.Store, "--format", "har", "~m", "POST");
        using (var document = JsonDocument.Parse(onlyPost.StandardOutput))
        {
            var entry = Assert.Single(document.RootElement.GetProperty("log").GetProperty("entries").EnumerateArray());
            Assert.Equal("payload=1&name=a+b", entry.GetProperty("request").GetProperty("postData").GetProperty("text").GetString());
        }

        var curl = await _session.CliAsync("flows", "export", _session.Store, "--format", "curl", "~m POST");
        Assert.Contains($"curl --globoff 'https://localhost:{tls.Port}/echo' -X 'POST'", curl.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("--data-raw 'payload=1&name=a+b'", curl.StandardOutput, StringComparison.Ordinal);

        var back = Path.Combine(_session.Dir, "back.db");
        var imported = await _session.CliAsync("flows", "import", har, "-o", back);
        Assert.Equal(0, imported.ExitCode);
        var backJson = CommandSession.Lines(await _session.CliAsync("flows", "list", back, "--json")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(json.Select(j => j.GetProperty("url").GetString()), backJson.Select(j => j.GetProperty("url").GetString()));
        Assert.Equal(json.Select(j => j.GetProperty("status").ToString()), backJson.Select(j => j.GetProperty("status").ToString()));
    }

    [Fact]
    public async Task A_raw_tunnel_is_recorded_listed_as_one_line_selected_by_tcp_shown_and_left_out_of_HAR()
    {
        await using var plain = await KestrelOrigin.StartAsync(CommandSession.MapWithGzip);
        await using var raw = new RawOrigin(async stream =>
        {
            var received = await RawClient.ReadToEndAsync(stream);
            await stream.WriteAsync(received);
        });
        var proxy = _session.Track(await InterposeProcess.StartAsync(_session.Home, "-w", _session.Store));
        using (var client = CommandSession.Client(proxy))
        {
            Assert.Equal("hello from origin", await client.GetStringAsync(plain.Url("/hello")));
        }

        await using (var tunnel = (System.Net.Sockets.NetworkStream)await RawClient.TunnelAsync(proxy.Port, "localhost", raw.Port))
        {
            await tunnel.WriteAsync("\u0001raw bytes"u8.ToArray());
            tunnel.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            Assert.Equal(10, (await RawClient.ReadToEndAsync(tunnel)).Length);
        }

        // SIGTERM: the proxy drains its connections, so the tunnel's end is reported and written before it exits.
        Assert.Equal(0, await proxy.TerminateAsync());

        var lines = CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store));
        Assert.Equal(2, lines.Length);
        var tunnelLine = Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~tcp")));
        Assert.Contains($"TUNNEL localhost:{raw.Port} raw -> 10b up 10b down", tunnelLine, StringComparison.Ordinal);
        Assert.Contains("/hello", Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "!~tcp"))), StringComparison.Ordinal);
        Assert.Empty(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~tcp & ~t text")));

        var json = JsonDocument.Parse(Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~tcp", "--json")))).RootElement;
        Assert.Equal("tunnel", json.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("status").ValueKind);
        var shown = await _session.CliAsync("flows", "show", _session.Store, json.GetProperty("id").GetString()!);
        Assert.Contains($"Tunnel: raw to localhost:{raw.Port}", shown.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Bytes: 10 from the client, 10 from the server", shown.StandardOutput, StringComparison.Ordinal);

        var har = await _session.CliAsync("flows", "export", _session.Store, "--format", "har");
        using var document = JsonDocument.Parse(har.StandardOutput);
        Assert.Equal(1, document.RootElement.GetProperty("log").GetProperty("entries").GetArrayLength());
    }

    [HarValidatorFact]
    public async Task An_exported_HAR_of_recorded_traffic_passes_the_har_validator()
    {
        await using var tls = await KestrelOrigin.StartAsync(CommandSession.MapWithGzip, TestPki.Issue(TestPki.OriginRoot, "localhost"));
        var proxy = _session.Track(await InterposeProcess.StartAsync(_session.Home, "--upstream-ca", _session.OriginRootPem(), "-w", _session.Store));
        using (var client = CommandSession.Client(proxy))
        {
            using var binary = new ByteArrayContent([0, 1, 2, 0xff, 0xfe]);
            (await client.PostAsync(tls.Url("/echo"), binary)).Dispose();
            (await client.GetAsync(tls.Url("/gz"))).Dispose();
            (await client.GetAsync(new Uri($"http://localhost:{CommandSession.ClosedPort()}/down"))).Dispose();
        }

        Assert.Equal(0, await proxy.TerminateAsync());
        var har = Path.Combine(HarValidatorFactAttribute.Folder, "recorded-" + Guid.NewGuid().ToString("N") + ".har");
        try
        {
            Assert.Equal(0, (await _session.CliAsync("flows", "export", _session.Store, "--format", "har", "-o", har)).ExitCode);
            var (code, text) = HarValidatorFactAttribute.Validate(har);
            Assert.True(code == 0, text);
            Assert.Contains("valid 3", text, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(har);
        }
    }

    [Fact]
    public async Task A_recorder_killed_with_SIGKILL_leaves_a_file_that_lists_every_acknowledged_flow()
    {
        await using var plain = await KestrelOrigin.StartAsync(CommandSession.MapWithGzip);
        var proxy = _session.Track(await InterposeProcess.StartAsync(_session.Home, "-v", "-w", _session.Store));
        using (var client = CommandSession.Client(proxy))
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal("hello from origin", await client.GetStringAsync(plain.Url("/hello?n=" + i)));
            }
        }

        // The store's Debug line for a commit says how many flows this process has written so far.
        await proxy.WaitForLineAsync(l => l.Contains("(3 written by this process)", StringComparison.Ordinal));
        Assert.Equal(0, (await ProcessResult.RunAsync("kill", ["-KILL", proxy.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)])).ExitCode);
        Assert.NotEqual(0, await proxy.WaitForExitAsync());

        var listed = await _session.CliAsync("flows", "list", _session.Store);
        Assert.Equal(0, listed.ExitCode);
        Assert.Equal(3, CommandSession.Lines(listed).Length);

        // And a new recorder takes the file over: the killed one's lock died with it.
        var again = _session.Track(await InterposeProcess.StartAsync(Path.Combine(_session.Dir, "home2"), "-w", _session.Store));
        Assert.Equal(0, await again.TerminateAsync());
    }

    [Fact]
    public async Task A_second_recorder_into_the_same_file_is_refused_with_one_line_and_exit_2()
    {
        var first = _session.Track(await InterposeProcess.StartAsync(_session.Home, "-w", _session.Store));

        var second = await _session.CliAsync("--home", Path.Combine(_session.Dir, "home2"), "run", "--listen", "127.0.0.1:0", "-w", _session.Store);

        Assert.Equal(2, second.ExitCode);
        Assert.Equal($"interpose: {_session.Store}: another process is recording into this file (two recorders into one file are refused)", second.StandardError.Trim());
        Assert.Equal(0, (await _session.CliAsync("flows", "list", _session.Store)).ExitCode);
        Assert.Equal(0, await first.TerminateAsync());
    }

    [Fact]
    public async Task Files_that_are_not_flow_stores_and_bad_filters_are_one_line_errors_with_exit_2_and_nothing_changes()
    {
        var text = Path.Combine(_session.Dir, "notes.txt");
        await File.WriteAllTextAsync(text, "not a database\n" + new string('x', 4000));
        var before = await File.ReadAllBytesAsync(text);

        var notStore = await _session.CliAsync("flows", "list", text);
        var missing = await _session.CliAsync("flows", "list", Path.Combine(_session.Dir, "missing.db"));
        var recordInto = await _session.CliAsync("--home", _session.Home, "run", "--listen", "127.0.0.1:0", "-w", text);

        Assert.Equal((2, $"interpose: {text}: not an Interpose flow store (not a SQLite database)"), (notStore.ExitCode, notStore.StandardError.Trim()));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("no such file", missing.StandardError, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_session.Dir, "missing.db")));
        Assert.Equal(2, recordInto.ExitCode);
        Assert.Contains("not an Interpose flow store", recordInto.StandardError, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(text));

        var proxy = _session.Track(await InterposeProcess.StartAsync(_session.Home, "-w", _session.Store));
        Assert.Equal(0, await proxy.TerminateAsync());
        var badFilter = await _session.CliAsync("flows", "list", _session.Store, "~c 404 & (~m GET");
        Assert.Equal(2, badFilter.ExitCode);
        Assert.StartsWith("interpose: bad filter at character 17: expected ')'", badFilter.StandardError, StringComparison.Ordinal);
        Assert.Contains("  ~c 404 & (~m GET\n" + new string(' ', 2 + 16) + "^", badFilter.StandardError, StringComparison.Ordinal);

        var badHar = Path.Combine(_session.Dir, "bad.har");
        await File.WriteAllTextAsync(badHar, "{\"log\":{\"version\":\"1.2\",\"entries\":[{\"startedDateTime\":\"2026-01-01T00:00:00Z\",\"request\":{\"url\":\"http://x.test/\"}}]}}");
        var import = await _session.CliAsync("flows", "import", badHar, "-o", Path.Combine(_session.Dir, "imported.db"));
        Assert.Equal(2, import.ExitCode);
        Assert.Contains("entry 0", import.StandardError, StringComparison.Ordinal);
    }
}
