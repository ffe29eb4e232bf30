using System.IO.Compression;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Interpose.Core.Tests.Flows;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// Issue 16's end-to-end check through the real command: record a mix (plain HTTP, intercepted HTTPS, an HTTP/2
/// exchange, a POST body, a gzip response, a 404, a connection error), stop with SIGTERM, list with filters, export HAR
/// (validated when npm can fetch har-validator), server-replay with every origin stopped, and client-replay against fresh
/// raw-socket origins on the same ports that compare the bytes they receive with what the originals received.
/// </summary>
public sealed class FlowReplayCommandTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly CommandSession _session = new(output);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _session.DisposeAsync();

    [Fact]
    public async Task Recorded_traffic_is_listed_exported_served_back_with_origins_down_and_replayed_byte_for_byte()
    {
        var rootPem = _session.OriginRootPem();
        var closedPort = CommandSession.ClosedPort();
        int plainPort, securePort, kestrelPort;
        string plainReceived, secureReceived;

        // 1. Record the mix, then stop the recorder with SIGTERM.
        await using (var plain = ByteRecordingOrigin.Start(0, null))
        await using (var secure = ByteRecordingOrigin.Start(0, TestPki.Issue(TestPki.OriginRoot, "localhost")))
        await using (var kestrel = await KestrelOrigin.StartAsync(CommandSession.MapWithGzip, TestPki.Issue(TestPki.OriginRoot, "localhost")))
        {
            (plainPort, securePort, kestrelPort) = (plain.Port, secure.Port, kestrel.Port);
            var proxy = _session.Track(await InterposeProcess.StartAsync(_session.Home, "--upstream-ca", rootPem, "-w", _session.Store));
            using (var client = CommandSession.Client(proxy))
            {
                Assert.Equal("recorded GET /plain?q=1", await client.GetStringAsync(new Uri($"http://127.0.0.1:{plainPort}/plain?q=1")));
                using var body = new StringContent("{\"order\":42}", Encoding.UTF8, "application/json");
                using var posted = await client.PostAsync(new Uri($"http://127.0.0.1:{plainPort}/orders"), body);
                Assert.Equal("recorded POST /orders", await posted.Content.ReadAsStringAsync());
                Assert.Equal("recorded GET /secure", await client.GetStringAsync(new Uri($"https://localhost:{securePort}/secure")));
                using var h2 = new HttpRequestMessage(HttpMethod.Get, new Uri($"https://localhost:{kestrelPort}/hello")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
                using var h2Response = await client.SendAsync(h2);
                Assert.Equal(HttpVersion.Version20, h2Response.Version);
                using var gz = await client.GetAsync(new Uri($"https://localhost:{kestrelPort}/gz"));
                Assert.Equal("gzip", Assert.Single(gz.Content.Headers.ContentEncoding));
                using var missing = await client.GetAsync(new Uri($"https://localhost:{kestrelPort}/missing"));
                Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
                using var refused = await client.GetAsync(new Uri($"http://127.0.0.1:{closedPort}/down"));
                Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
            }

            Assert.Equal(0, await proxy.TerminateAsync());
            (plainReceived, secureReceived) = (plain.ReceivedText, secure.ReceivedText);
        }

        // 2. List with filters.
        Assert.Equal(7, CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store)).Length);
        Assert.Contains("/missing -> 404", Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~c 404"))), StringComparison.Ordinal);
        Assert.Contains("/orders", Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~m POST & ~bq order"))), StringComparison.Ordinal);
        Assert.Contains("/down", Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~e"))), StringComparison.Ordinal);
        Assert.Equal(3, CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~d localhost & ~c 200")).Length);

        // 3. Export HAR, and validate it where har-validator can be installed.
        var har = Path.Combine(_session.Dir, "out.har");
        Assert.Equal(0, (await _session.CliAsync("flows", "export", _session.Store, "--format", "har", "-o", har)).ExitCode);
        using (var document = JsonDocument.Parse(await File.ReadAllBytesAsync(har)))
        {
            var entries = document.RootElement.GetProperty("log").GetProperty("entries").EnumerateArray().ToList();
            Assert.Equal(7, entries.Count);
        }

        using (var hello = JsonDocument.Parse(Assert.Single(CommandSession.Lines(await _session.CliAsync("flows", "list", _session.Store, "~u /hello", "--json")))))
        {
            var shown = await _session.CliAsync("flows", "show", _session.Store, hello.RootElement.GetProperty("id").GetString()!);
            Assert.Contains("HTTP: client HTTP/2.0, origin HTTP/2.0", shown.StandardOutput, StringComparison.Ordinal);
            Assert.Matches(@"\nGET https://[^ ]+/hello HTTP/2\.0\n", shown.StandardOutput);
            Assert.Matches(@"\nHTTP/2\.0 200 ", shown.StandardOutput);
        }

        if (new HarValidatorFactAttribute().Skip is { } skipped)
        {
            output.WriteLine("HAR not validated: " + skipped);
        }
        else
        {
            var (code, text) = HarValidatorFactAttribute.Validate(har);
            Assert.True(code == 0, text);
            Assert.Contains("valid 7", text, StringComparison.Ordinal);
        }

        // 4. Server replay with every origin stopped: the answers come from the file.
        var served = Path.Combine(_session.Dir, "served.db");
        var replaying = _session.Track(await InterposeProcess.StartAsync(Path.Combine(_session.Dir, "home2"), "--upstream-ca", rootPem, "-S", _session.Store, "-w", served));
        using (var client = CommandSession.Client(replaying))
        {
            Assert.Equal("recorded GET /plain?q=1", await client.GetStringAsync(new Uri($"http://127.0.0.1:{plainPort}/plain?q=1")));
            using var body = new StringContent("{\"order\":42}", Encoding.UTF8, "application/json");
            using var posted = await client.PostAsync(new Uri($"http://127.0.0.1:{plainPort}/orders"), body);
            Assert.Equal("recorded POST /orders", await posted.Content.ReadAsStringAsync());
            Assert.Equal("recorded GET /secure", await client.GetStringAsync(new Uri($"https://localhost:{securePort}/secure")));
            Assert.Equal("hello from origin", await client.GetStringAsync(new Uri($"https://localhost:{kestrelPort}/hello")));
            using var gz = await client.GetAsync(new Uri($"https://localhost:{kestrelPort}/gz"));
            Assert.Equal("gzip", Assert.Single(gz.Content.Headers.ContentEncoding));
            await using (var gzip = new GZipStream(await gz.Content.ReadAsStreamAsync(), CompressionMode.Decompress))
            using (var reader = new StreamReader(gzip))
            {
                Assert.Equal("{\"hello\":\"world\",\"n\":[1,2]}", await reader.ReadToEndAsync());
            }

            using var missing = await client.GetAsync(new Uri($"https://localhost:{kestrelPort}/missing"));
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

            // Served once each: the second time the origin is asked, and it is down.
            using var again = await client.GetAsync(new Uri($"http://127.0.0.1:{plainPort}/plain?q=1"));
            Assert.Equal(HttpStatusCode.BadGateway, again.StatusCode);
        }

        Assert.Equal(0, await replaying.TerminateAsync());
        Assert.Contains(replaying.StandardError.Concat(replaying.StandardOutput), l => l.Contains("/secure -> 200", StringComparison.Ordinal) && l.Contains("[server-replay]", StringComparison.Ordinal));
        Assert.Equal(6, CommandSession.Lines(await _session.CliAsync("flows", "list", served, "~replays")).Length);

        // 5. Client replay against fresh origins on the same ports: the same bytes arrive.
        var replayed = Path.Combine(_session.Dir, "replayed.db");
        await using (var plain = ByteRecordingOrigin.Start(plainPort, null))
        await using (var secure = ByteRecordingOrigin.Start(securePort, TestPki.Issue(TestPki.OriginRoot, "localhost")))
        {
            var replay = await _session.CliAsync("--home", _session.Home, "replay", _session.Store, $"~u :{plainPort}/ | ~u :{securePort}/", "--upstream-ca", rootPem, "-w", replayed);
            Assert.Equal(0, replay.ExitCode);
            Assert.Contains("Replayed 3 flows, 0 failed", replay.StandardError, StringComparison.Ordinal);
            Assert.Contains($"GET https://localhost:{securePort}/secure -> 200", replay.StandardOutput, StringComparison.Ordinal);
            Assert.Equal(plainReceived, plain.ReceivedText);
            Assert.Equal(secureReceived, secure.ReceivedText);
        }

        Assert.Equal(3, CommandSession.Lines(await _session.CliAsync("flows", "list", replayed, "~replayq")).Length);

        // A replay that gets no response (the origin is down) makes the exit code 1.
        var down = await _session.CliAsync("replay", _session.Store, "~e");
        Assert.Equal(1, down.ExitCode);
        Assert.Contains("Replayed 1 flows, 1 failed", down.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_server_replay_file_or_extra_value_is_one_line_and_exit_2()
    {
        var text = Path.Combine(_session.Dir, "notes.txt");
        await File.WriteAllTextAsync(text, "not a database\n" + new string('x', 4000));

        var notStore = await _session.CliAsync("--home", _session.Home, "run", "--listen", "127.0.0.1:0", "-S", text);
        var badExtra = await _session.CliAsync("--home", _session.Home, "run", "--listen", "127.0.0.1:0", "-S", text, "--server-replay-extra", "drop");
        var withoutFile = await _session.CliAsync("--home", _session.Home, "run", "--listen", "127.0.0.1:0", "--server-replay-reuse");
        var replayNotStore = await _session.CliAsync("replay", text);

        Assert.Equal((2, $"interpose: {text}: not an Interpose flow store (not a SQLite database)"), (notStore.ExitCode, notStore.StandardError.Trim()));
        Assert.Equal((2, "interpose: --server-replay-extra: 'drop' is not forward, kill or a status code (200-599)"), (badExtra.ExitCode, badExtra.StandardError.Trim()));
        Assert.Equal((2, "interpose: the --server-replay-* flags need -S FILE"), (withoutFile.ExitCode, withoutFile.StandardError.Trim()));
        Assert.Equal((2, $"interpose: {text}: not an Interpose flow store (not a SQLite database)"), (replayNotStore.ExitCode, replayNotStore.StandardError.Trim()));
    }

    /// <summary>
    /// A raw-socket HTTP/1.1 origin on a given loopback port (0 for any), optionally TLS: it records every request's bytes
    /// (head and Content-Length body, decrypted) in arrival order and answers <c>recorded METHOD TARGET</c>.
    /// </summary>
    private sealed class ByteRecordingOrigin : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly X509Certificate2? _certificate;
        private readonly CancellationTokenSource _stop = new();
        private readonly MemoryStream _received = new();
        private readonly List<Task> _connections = [];
        private readonly Task _accept;

        private ByteRecordingOrigin(int port, X509Certificate2? certificate)
        {
            _certificate = certificate;
            _listener = new TcpListener(IPAddress.Loopback, port);

            // The second origin takes the first one's port while the first one's closed connections may linger.
            _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _listener.Start();
            _accept = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public string ReceivedText
        {
            get
            {
                lock (_received)
                {
                    return Encoding.Latin1.GetString(_received.ToArray());
                }
            }
        }

        public static ByteRecordingOrigin Start(int port, X509Certificate2? certificate) => new(port, certificate);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accept;
            Task[] open;
            lock (_connections)
            {
                open = [.. _connections];
            }

            await Task.WhenAll(open);
            _stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            while (true)
            {
                Socket socket;
                try
                {
                    socket = await _listener.AcceptSocketAsync(_stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                lock (_connections)
                {
                    _connections.Add(ServeAsync(socket));
                }
            }
        }

        private async Task ServeAsync(Socket socket)
        {
            await using Stream network = new NetworkStream(socket, ownsSocket: true);
            using var registration = _stop.Token.Register(socket.Dispose);
            try
            {
                var stream = network;
                if (_certificate is not null)
                {
                    var ssl = new SslStream(network, leaveInnerStreamOpen: true);
                    await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                    {
                        ServerCertificate = _certificate,
                        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                        ApplicationProtocols = [SslApplicationProtocol.Http11],
                    });
                    stream = ssl;
                }

                while (true)
                {
                    var head = await RawOrigin.ReadHeadAsync(stream);
                    var length = head.Split("\r\n").Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                        .Select(l => int.Parse(l["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
                    var body = new byte[length];
                    await stream.ReadExactlyBoundedAsync(body);
                    lock (_received)
                    {
                        _received.Write(Encoding.Latin1.GetBytes(head));
                        _received.Write(body);
                    }

                    var requestLine = head[..head.IndexOf("\r\n", StringComparison.Ordinal)].Split(' ');
                    var answer = "recorded " + requestLine[0] + " " + requestLine[1];
                    await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {answer.Length}\r\n\r\n{answer}"));
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or AuthenticationException or TimeoutException or OperationCanceledException)
            {
                // The proxy closed its pooled connection, or the origin is stopping.
            }
        }
    }
}
