using System.IO.Compression;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Interpose.Core.Tests.Flows;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// <c>interpose run -w FILE</c> and <c>interpose flows ...</c> through the real command: a mix of plain and intercepted
/// HTTPS exchanges recorded, then listed with filters, shown, exported as HAR (validated) and curl, imported back;
/// a SIGKILL mid-recording; a second recorder refused; files that are not flow stores.
/// </summary>
public sealed class FlowStoreCommandTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("interpose-flows-").FullName;
    private readonly List<InterposeProcess> _started = [];

    private string Home => Path.Combine(_dir, "home");

    private string Store => Path.Combine(_dir, "flows.db");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var process in _started)
        {
            foreach (var line in process.StandardError.Concat(process.StandardOutput))
            {
                output.WriteLine(line);
            }

            await process.DisposeAsync();
        }

        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task A_recorded_mix_is_listed_filtered_shown_exported_and_imported_back()
    {
        await using var plain = await KestrelOrigin.StartAsync(Map);
        await using var tls = await KestrelOrigin.StartAsync(Map, TestPki.Issue(TestPki.OriginRoot, "localhost"));
        var proxy = Track(await InterposeProcess.StartAsync(Home, "--upstream-ca", OriginRootPem(), "-w", Store));
        var closedPort = ClosedPort();
        using (var client = Client(proxy))
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

        var all = await CliAsync("flows", "list", Store);
        Assert.Equal(0, all.ExitCode);
        Assert.Equal(6, Lines(all).Length);
        var notFound = Assert.Single(Lines(await CliAsync("flows", "list", Store, "~c", "404")));
        Assert.Contains($"GET https://localhost:{tls.Port}/missing -> 404", notFound, StringComparison.Ordinal);
        Assert.Contains("/echo", Assert.Single(Lines(await CliAsync("flows", "list", Store, "~m POST & ~bq payload"))), StringComparison.Ordinal);
        Assert.Contains("-> error (connect)", Assert.Single(Lines(await CliAsync("flows", "list", Store, "~e"))), StringComparison.Ordinal);
        Assert.Equal(2, Lines(await CliAsync("flows", "list", Store, "~u /hello")).Length);
        Assert.Contains("/gz", Assert.Single(Lines(await CliAsync("flows", "list", Store, "~bs", "world"))), StringComparison.Ordinal);

        var json = Lines(await CliAsync("flows", "list", Store, "--json")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(6, json.Count);
        Assert.All(json, j => Assert.True(Guid.TryParse(j.GetProperty("id").GetString(), out _)));
        Assert.Equal(["GET", "GET", "POST", "GET", "GET", "GET"], json.Select(j => j.GetProperty("method").GetString()));
        Assert.Equal(tls.Url("/missing").ToString(), json[4].GetProperty("url").GetString());
        Assert.Equal([200, 200, 200, 200, 404], json.Take(5).Select(j => j.GetProperty("status").GetInt32()));
        Assert.Equal(JsonValueKind.Null, json[5].GetProperty("status").ValueKind);

        var post = await CliAsync("flows", "show", Store, json[2].GetProperty("id").GetString()!);
        Assert.Equal(0, post.ExitCode);
        Assert.Contains($"POST https://localhost:{tls.Port}/echo HTTP/1.1", post.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("\npayload: 1\nname: a b\n", post.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Server TLS: Tls", post.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Client TLS: Tls", post.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("certificate: CN=localhost", post.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Timings (ms after the request head):", post.StandardOutput, StringComparison.Ordinal);
        var gzip = await CliAsync("flows", "show", Store, json[3].GetProperty("id").GetString()!);
        Assert.Contains("(decoded from gzip", gzip.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("{\n  \"hello\": \"world\",\n  \"n\": [\n    1,\n    2\n  ]\n}", gzip.StandardOutput, StringComparison.Ordinal);

        var har = Path.Combine(_dir, "out.har");
        Assert.Equal(0, (await CliAsync("flows", "export", Store, "--format", "har", "-o", har)).ExitCode);
        using (var document = JsonDocument.Parse(await File.ReadAllBytesAsync(har)))
        {
            Assert.Equal(6, document.RootElement.GetProperty("log").GetProperty("entries").GetArrayLength());
        }

        var onlyPost = await CliAsync("flows", "export", Store, "--format", "har", "~m", "POST");
        using (var document = JsonDocument.Parse(onlyPost.StandardOutput))
        {
            var entry = Assert.Single(document.RootElement.GetProperty("log").GetProperty("entries").EnumerateArray());
            Assert.Equal("payload=1&name=a+b", entry.GetProperty("request").GetProperty("postData").GetProperty("text").GetString());
        }

        var curl = await CliAsync("flows", "export", Store, "--format", "curl", "~m POST");
        Assert.Contains($"curl 'https://localhost:{tls.Port}/echo' -X 'POST'", curl.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("--data-binary 'payload=1&name=a+b'", curl.StandardOutput, StringComparison.Ordinal);

        var back = Path.Combine(_dir, "back.db");
        var imported = await CliAsync("flows", "import", har, "-o", back);
        Assert.Equal(0, imported.ExitCode);
        var backJson = Lines(await CliAsync("flows", "list", back, "--json")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(json.Select(j => j.GetProperty("url").GetString()), backJson.Select(j => j.GetProperty("url").GetString()));
        Assert.Equal(json.Select(j => j.GetProperty("status").ToString()), backJson.Select(j => j.GetProperty("status").ToString()));
    }

    [HarValidatorFact]
    public async Task An_exported_HAR_of_recorded_traffic_passes_the_har_validator()
    {
        await using var tls = await KestrelOrigin.StartAsync(Map, TestPki.Issue(TestPki.OriginRoot, "localhost"));
        var proxy = Track(await InterposeProcess.StartAsync(Home, "--upstream-ca", OriginRootPem(), "-w", Store));
        using (var client = Client(proxy))
        {
            using var binary = new ByteArrayContent([0, 1, 2, 0xff, 0xfe]);
            (await client.PostAsync(tls.Url("/echo"), binary)).Dispose();
            (await client.GetAsync(tls.Url("/gz"))).Dispose();
            (await client.GetAsync(new Uri($"http://localhost:{ClosedPort()}/down"))).Dispose();
        }

        Assert.Equal(0, await proxy.TerminateAsync());
        var har = Path.Combine(HarValidatorFactAttribute.Folder, "recorded-" + Guid.NewGuid().ToString("N") + ".har");
        try
        {
            Assert.Equal(0, (await CliAsync("flows", "export", Store, "--format", "har", "-o", har)).ExitCode);
            const string Script = "const v=require('har-validator');const h=JSON.parse(require('fs').readFileSync(process.argv[1]));"
                + "v.har(h).then(()=>console.log('valid '+h.log.entries.length)).catch(e=>{console.log(JSON.stringify(e.errors||e.message));process.exit(1);});";
            var (code, text) = HarValidatorFactAttribute.Run("node", HarValidatorFactAttribute.Folder, "-e", Script, har);
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
        await using var plain = await KestrelOrigin.StartAsync(Map);
        var proxy = Track(await InterposeProcess.StartAsync(Home, "-v", "-w", Store));
        using (var client = Client(proxy))
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

        var listed = await CliAsync("flows", "list", Store);
        Assert.Equal(0, listed.ExitCode);
        Assert.Equal(3, Lines(listed).Length);

        // And a new recorder takes the file over: the killed one's lock died with it.
        var again = Track(await InterposeProcess.StartAsync(Path.Combine(_dir, "home2"), "-w", Store));
        Assert.Equal(0, await again.TerminateAsync());
    }

    [Fact]
    public async Task A_second_recorder_into_the_same_file_is_refused_with_one_line_and_exit_2()
    {
        var first = Track(await InterposeProcess.StartAsync(Home, "-w", Store));

        var second = await CliAsync("--home", Path.Combine(_dir, "home2"), "run", "--listen", "127.0.0.1:0", "-w", Store);

        Assert.Equal(2, second.ExitCode);
        Assert.Equal($"interpose: {Store}: another process is recording into this file (two recorders into one file are refused)", second.StandardError.Trim());
        Assert.Equal(0, (await CliAsync("flows", "list", Store)).ExitCode);
        Assert.Equal(0, await first.TerminateAsync());
    }

    [Fact]
    public async Task Files_that_are_not_flow_stores_and_bad_filters_are_one_line_errors_with_exit_2_and_nothing_changes()
    {
        var text = Path.Combine(_dir, "notes.txt");
        await File.WriteAllTextAsync(text, "not a database\n" + new string('x', 4000));
        var before = await File.ReadAllBytesAsync(text);

        var notStore = await CliAsync("flows", "list", text);
        var missing = await CliAsync("flows", "list", Path.Combine(_dir, "missing.db"));
        var recordInto = await CliAsync("--home", Home, "run", "--listen", "127.0.0.1:0", "-w", text);

        Assert.Equal((2, $"interpose: {text}: not an Interpose flow store (not a SQLite database)"), (notStore.ExitCode, notStore.StandardError.Trim()));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("no such file", missing.StandardError, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "missing.db")));
        Assert.Equal(2, recordInto.ExitCode);
        Assert.Contains("not an Interpose flow store", recordInto.StandardError, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(text));

        var proxy = Track(await InterposeProcess.StartAsync(Home, "-w", Store));
        Assert.Equal(0, await proxy.TerminateAsync());
        var badFilter = await CliAsync("flows", "list", Store, "~c 404 & (~m GET");
        Assert.Equal(2, badFilter.ExitCode);
        Assert.StartsWith("interpose: bad filter at character 17: expected ')'", badFilter.StandardError, StringComparison.Ordinal);
        Assert.Contains("  ~c 404 & (~m GET\n" + new string(' ', 2 + 16) + "^", badFilter.StandardError, StringComparison.Ordinal);

        var badHar = Path.Combine(_dir, "bad.har");
        await File.WriteAllTextAsync(badHar, "{\"log\":{\"version\":\"1.2\",\"entries\":[{\"startedDateTime\":\"2026-01-01T00:00:00Z\",\"request\":{\"url\":\"http://x.test/\"}}]}}");
        var import = await CliAsync("flows", "import", badHar, "-o", Path.Combine(_dir, "imported.db"));
        Assert.Equal(2, import.ExitCode);
        Assert.Contains("entry 0", import.StandardError, StringComparison.Ordinal);
    }

    private static void Map(WebApplication app)
    {
        Origins.MapBasics(app);
        app.MapGet("/gz", async (HttpContext context) =>
        {
            context.Response.ContentType = "application/json";
            context.Response.Headers.ContentEncoding = "gzip";
            using var buffer = new MemoryStream();
            using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
            {
                gzip.Write("{\"hello\":\"world\",\"n\":[1,2]}"u8);
            }

            await context.Response.Body.WriteAsync(buffer.ToArray());
        });
    }

    private InterposeProcess Track(InterposeProcess process)
    {
        _started.Add(process);
        return process;
    }

    private string OriginRootPem()
    {
        var path = Path.Combine(_dir, "origin-root.pem");
        File.WriteAllText(path, TestPki.OriginRoot.ExportCertificatePem());
        return path;
    }

    private static HttpClient Client(InterposeProcess proxy)
    {
        var ca = X509CertificateLoader.LoadCertificateFromFile(proxy.CaPemPath);
        var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy(proxy.Url),
            UseProxy = true,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, errors) => TestProxy.ChainsTo(cert, ca, errors),
            },
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(1) };
    }

    /// <summary>A loopback port nothing listens on: bound, then released.</summary>
    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static string[] Lines(ProcessResult result) =>
        result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private async Task<ProcessResult> CliAsync(params string[] args)
    {
        var result = InterposeProcess.NativeCliPath is { } native
            ? await ProcessResult.RunAsync(native, args)
            : await ProcessResult.RunAsync("dotnet", [InterposeProcess.CliPath, .. args]);
        output.WriteLine($"interpose {string.Join(' ', args)} -> {result.ExitCode}\n{result.StandardOutput}{result.StandardError}");
        return result;
    }
}
