using System.Diagnostics;
using System.Text.Json.Nodes;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Scripts;

/// <summary>
/// The scripts of samples/scripts, and one that throws, through the real <c>interpose run -s</c> against local origins,
/// plain and intercepted HTTPS. One process loads them all; each test reaches a different path. CI runs these again
/// against the installed native tool, which hands scripts to its JIT build.
/// </summary>
public sealed class ScriptCommandTests(ScriptCommandTests.Fixture fixture, ITestOutputHelper output) : IClassFixture<ScriptCommandTests.Fixture>, IDisposable
{
    public void Dispose() => fixture.Proxy.WriteOutputTo(output);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Add_header_sets_a_header_on_every_response(bool tls)
    {
        var answer = await CurlAsync(tls, "/hello");

        Assert.StartsWith("HTTP/1.1 200 ", answer.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Interpose-Script: add-header\r\n", answer.StandardOutput, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nfrom origin", answer.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Mock_endpoint_answers_without_contacting_the_origin(bool tls)
    {
        var before = fixture.StatusSeenByOrigin;

        var answer = await CurlAsync(tls, "/api/status?probe=1");

        Assert.StartsWith("HTTP/1.1 200 ", answer.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Interpose-Mock: status\r\n", answer.StandardOutput, StringComparison.Ordinal);
        Assert.EndsWith("{\"status\":\"ok\",\"mocked\":true}", answer.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(before, fixture.StatusSeenByOrigin);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Log_json_bodies_writes_one_line_per_json_exchange(bool tls)
    {
        var marker = tls ? "tls-body" : "plain-body";

        var answer = await CurlAsync(tls, "/echo-json", "-H", "Content-Type: application/json", "--data-binary", "{\"marker\":\"" + marker + "\"}");

        Assert.StartsWith("HTTP/1.1 200 ", answer.StandardOutput, StringComparison.Ordinal);
        var line = await fixture.Proxy.WaitForLineAsync(l => l.StartsWith('{') && l.Contains(marker, StringComparison.Ordinal));
        var logged = JsonNode.Parse(line)!;
        Assert.Equal("POST", (string?)logged["method"]);
        Assert.Equal(Origin(tls).Url("/echo-json").ToString(), (string?)logged["url"]);
        Assert.Equal(200, (int?)logged["status"]);
        Assert.Equal(marker, (string?)logged["request"]!["marker"]);
        Assert.Equal(marker, (string?)logged["response"]!["echo"]!["marker"]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Delay_responses_holds_responses_under_slow_back(bool tls)
    {
        var started = Stopwatch.GetTimestamp();

        var answer = await CurlAsync(tls, "/slow/page");
        var elapsed = Stopwatch.GetElapsedTime(started);

        Assert.StartsWith("HTTP/1.1 200 ", answer.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Interpose-Delay: 500ms\r\n", answer.StandardOutput, StringComparison.Ordinal);

        // A lower bound only: the script's wait is at least this long however busy the machine is.
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(500), $"answered after {elapsed.TotalMilliseconds} ms");
        Assert.DoesNotContain("X-Interpose-Delay", (await CurlAsync(tls, "/hello")).StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_script_that_throws_fails_only_its_exchange_with_a_502_naming_it(bool tls)
    {
        var failed = await CurlAsync(tls, "/boom");
        var next = await CurlAsync(tls, "/hello");

        Assert.StartsWith("HTTP/1.1 502 ", failed.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("addon Boom failed in RequestAsync: the script gave up", failed.StandardOutput, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 ", next.StandardOutput, StringComparison.Ordinal);
        await fixture.Proxy.WaitForLineAsync(l => l.Contains("Addon Boom failed in RequestAsync", StringComparison.Ordinal));
    }

    private KestrelOrigin Origin(bool tls) => tls ? fixture.Tls : fixture.Plain;

    private Task<ProcessResult> CurlAsync(bool tls, string path, params string[] extra) =>
        fixture.Proxy.CurlAsync(Origin(tls).Url("/").ToString().TrimEnd('/') + path, ["--http1.1", .. extra]);

    /// <summary>Two origins (plain and TLS) and one proxy running every sample script and a throwing one.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("interpose-scripts-").FullName;
        private int _status;

        public InterposeProcess Proxy { get; private set; } = null!;

        public KestrelOrigin Plain { get; private set; } = null!;

        public KestrelOrigin Tls { get; private set; } = null!;

        public int StatusSeenByOrigin => Volatile.Read(ref _status);

        /// <summary>samples/scripts in the repository the tests were built from.</summary>
        public static string SamplesDirectory { get; } = Path.Combine(
            AppContext.BaseDirectory[..AppContext.BaseDirectory.LastIndexOf(Path.DirectorySeparatorChar + "tests" + Path.DirectorySeparatorChar, StringComparison.Ordinal)],
            "samples",
            "scripts");

        public async Task InitializeAsync()
        {
            Plain = await KestrelOrigin.StartAsync(Map);
            Tls = await KestrelOrigin.StartAsync(Map, TestPki.Issue(TestPki.OriginRoot, "localhost"));
            var originRoot = Path.Combine(_dir, "origin-root.pem");
            File.WriteAllText(originRoot, TestPki.OriginRoot.ExportCertificatePem());
            var boom = Path.Combine(_dir, "boom.cs");
            File.WriteAllText(boom, """
                public sealed class Boom : ProxyAddon
                {
                    public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken) =>
                        exchange.Request.Path == "/boom" ? throw new InvalidOperationException("the script gave up") : default;
                }
                """);

            Proxy = await InterposeProcess.StartAsync(
                Path.Combine(_dir, "home"),
                "--upstream-ca", originRoot,
                "-s", Path.Combine(SamplesDirectory, "add-header.cs"),
                "-s", Path.Combine(SamplesDirectory, "mock-endpoint.cs"),
                "-s", Path.Combine(SamplesDirectory, "log-json-bodies.cs"),
                "-s", Path.Combine(SamplesDirectory, "delay-responses.cs"),
                "-s", boom);
        }

        public async Task DisposeAsync()
        {
            await Proxy.DisposeAsync();
            await Plain.DisposeAsync();
            await Tls.DisposeAsync();
            Directory.Delete(_dir, recursive: true);
        }

        private void Map(WebApplication app)
        {
            app.MapGet("/hello", () => "from origin");
            app.MapGet("/slow/page", () => "slow page");
            app.MapGet("/api/status", () =>
            {
                Interlocked.Increment(ref _status);
                return "from origin";
            });
            app.MapPost("/echo-json", async (HttpContext context) =>
            {
                var body = await JsonNode.ParseAsync(context.Request.Body);
                return Results.Json(new JsonObject { ["echo"] = body });
            });
        }
    }
}
