using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// Real HTTP/2 clients through the real command (<c>interpose run</c>, HTTP/2 on by default) to an HTTP/1.1 origin
/// over TLS: curl <c>--http2</c>, nghttp (h2 over intercepted TLS and h2c prior knowledge in a tunnel) and headless
/// Chromium. Each proves it spoke h2 to the proxy by the flow line the proxy prints (<c>[h2 -> h2]</c> to a TLS Kestrel origin, which speaks h2 too).
/// </summary>
public sealed class Http2InteropTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("interpose-h2-interop-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public async Task Curl_http2_over_intercepted_tls_speaks_h2_to_the_proxy()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await StartProxyAsync();

        var result = await ProcessResult.RunAsync("curl", ["--silent", "--show-error", "--fail", "--http2", "--proxy", proxy.Url.ToString(), "--noproxy", "", "--cacert", proxy.CaPemPath, "--write-out", " %{http_version}", origin.Url("/hello").ToString()]);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal("hello from origin 2", result.StandardOutput);
        await proxy.WaitForLineAsync(l => l.Contains($"GET https://localhost:{origin.Port}/hello -> 200", StringComparison.Ordinal) && l.EndsWith("[h2 -> h2]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task No_http2_flag_makes_curl_fall_back_to_http11()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await StartProxyAsync("--no-http2");

        var result = await ProcessResult.RunAsync("curl", ["--silent", "--show-error", "--fail", "--http2", "--proxy", proxy.Url.ToString(), "--noproxy", "", "--cacert", proxy.CaPemPath, "--write-out", " %{http_version}", origin.Url("/hello").ToString()]);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal("hello from origin 1.1", result.StandardOutput);
        await proxy.WaitForLineAsync(l => l.Contains($"/hello -> 200", StringComparison.Ordinal) && l.EndsWith("[h1 -> h1]", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Nghttp_speaks_h2_through_a_tunnel(bool tls)
    {
        Assert.True(File.Exists("/usr/bin/nghttp"), "nghttp is missing: apt-get install nghttp2-client (.ci/run installs it)");
        await using var origin = tls ? await Origins.StartTlsAsync() : await Origins.StartPlainAsync();
        await using var proxy = await StartProxyAsync();

        // nghttp has no proxy option: a local port whose every connection is a CONNECT tunnel through the proxy to the
        // origin. With https nghttp negotiates h2 by ALPN with the proxy's forged leaf; with http it sends the h2c
        // preface (prior knowledge). nghttp does not verify certificates, so only the flow line tells it met the proxy.
        await using var shim = new ConnectShim(proxy.Port, "localhost", origin.Port);
        var scheme = tls ? "https" : "http";
        var result = await ProcessResult.RunAsync("nghttp", ["--timeout=20", $"{scheme}://localhost:{shim.Port}/hello"]);

        Assert.True(result.ExitCode == 0, result.StandardError + result.StandardOutput);
        Assert.Equal("hello from origin", result.StandardOutput);
        await proxy.WaitForLineAsync(l => l.Contains($"GET {scheme}://localhost:{origin.Port}/hello -> 200", StringComparison.Ordinal) && l.EndsWith(tls ? "[h2 -> h2]" : "[h2 -> h1]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Headless_chromium_speaks_h2_to_the_proxy()
    {
        Assert.True(File.Exists("/usr/bin/chromium"), "chromium is missing: apt-get install chromium (.ci/run installs it)");
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await StartProxyAsync();

        // Chromium trusts only the proxy's certificates, by the hashes of their public keys (nothing is installed): the
        // CA's and the forged leaf's (the proxy may send the leaf alone; Chromium matches any key of the chain).
        using var ca = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(proxy.CaPemPath));
        using var leaf = await ForgedLeafAsync(proxy.Port, "localhost", origin.Port);
        var spkis = string.Join(',', new[] { ca, leaf }.Select(c => Convert.ToBase64String(SHA256.HashData(c.PublicKey.ExportSubjectPublicKeyInfo()))));
        var profile = Directory.CreateDirectory(Path.Combine(_home, "chromium")).FullName;

        // Nothing may leave the machine: Chromium's background requests are off, the Google hosts it still calls bypass
        // the proxy and fail in Chromium's own resolver (mapped to nothing, no DNS query), and the last assertion fails
        // if any other host reached the proxy.
        const string Bypass = "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com;*.gvt1.com;*.chrome.com";
        var result = await ProcessResult.RunAsync("chromium",
        [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", $"--user-data-dir={profile}",
            "--disable-background-networking", "--disable-component-update", "--disable-default-apps", "--disable-sync",
            "--disable-domain-reliability", "--no-pings", "--disable-client-side-phishing-detection",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
            $"--proxy-server=http://127.0.0.1:{proxy.Port}", $"--proxy-bypass-list={Bypass}",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
            $"--ignore-certificate-errors-spki-list={spkis}",
            "--dump-dom", origin.Url("/hello").ToString(),
        ]);

        var proxyLines = string.Join('\n', proxy.StandardError.Concat(proxy.StandardOutput));
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.True(result.StandardOutput.Contains("hello from origin", StringComparison.Ordinal), result.StandardError + "\n" + proxyLines);
        await proxy.WaitForLineAsync(l => l.Contains($"GET https://localhost:{origin.Port}/hello -> 200", StringComparison.Ordinal) && l.EndsWith("[h2 -> h2]", StringComparison.Ordinal));
        Assert.All(proxy.StandardOutput.Where(l => l.Contains(" -> ", StringComparison.Ordinal)), l => Assert.Contains("://localhost:", l, StringComparison.Ordinal));
    }

    /// <summary>The leaf the proxy forges for host:port, seen through a CONNECT tunnel (not validated: only its key is used).</summary>
    private static async Task<X509Certificate2> ForgedLeafAsync(int proxyPort, string host, int port)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, proxyPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200", await RawOrigin.ReadHeadAsync(stream), StringComparison.Ordinal);
        X509Certificate2? seen = null;
        await using var tls = new System.Net.Security.SslStream(stream, leaveInnerStreamOpen: false, (_, certificate, _, _) =>
        {
            seen = new X509Certificate2(certificate!);
            return true;
        });
        await tls.AuthenticateAsClientAsync(host).WaitAsync(BoundedRead.Limit);
        return seen!;
    }

    private async Task<InterposeProcess> StartProxyAsync(params string[] args)
    {
        var originRoot = Path.Combine(_home, "origin-root.pem");
        await File.WriteAllTextAsync(originRoot, TestPki.OriginRoot.ExportCertificatePem());
        return await InterposeProcess.StartAsync(Path.Combine(_home, "home"), ["--upstream-ca", originRoot, .. args]);
    }

    /// <summary>A loopback port whose connections are each relayed through a CONNECT tunnel of the proxy to host:port.</summary>
    private sealed class ConnectShim : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public ConnectShim(int proxyPort, string host, int port)
        {
            _listener.Start();
            _loop = AcceptAsync(proxyPort, host, port);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        private async Task AcceptAsync(int proxyPort, string host, int port)
        {
            var relays = new List<Task>();
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    relays.Add(RelayAsync(client, proxyPort, host, port));
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // Stopped.
            }

            await Task.WhenAll(relays);
        }

        private static async Task RelayAsync(TcpClient client, int proxyPort, string host, int port)
        {
            using (client)
            using (var upstream = new TcpClient())
            {
                try
                {
                    await upstream.ConnectAsync(IPAddress.Loopback, proxyPort);
                    var proxyStream = upstream.GetStream();
                    await proxyStream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"));
                    var head = await RawOrigin.ReadHeadAsync(proxyStream);
                    if (!head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
                    {
                        return;
                    }

                    var clientStream = client.GetStream();
                    var up = CopyAndCloseAsync(clientStream, upstream.Client);
                    var down = CopyAndCloseAsync(proxyStream, client.Client);
                    await Task.WhenAll(up, down);
                }
                catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or TimeoutException or EndOfStreamException)
                {
                    // Either side went away: the relay ends.
                }
            }
        }

        private static async Task CopyAndCloseAsync(NetworkStream from, Socket to)
        {
            var buffer = new byte[16 * 1024];
            int n;
            while ((n = await from.ReadBoundedAsync(buffer)) > 0)
            {
                await to.SendAsync(buffer.AsMemory(0, n));
            }

            to.Shutdown(SocketShutdown.Send);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _loop;
            _stop.Dispose();
        }
    }
}
