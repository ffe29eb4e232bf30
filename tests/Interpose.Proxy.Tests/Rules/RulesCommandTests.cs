using System.IO.Compression;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Rules;

/// <summary>
/// Every rule flag through the real <c>interpose run</c> against local origins, for plain HTTP and for intercepted
/// HTTPS, with the expectations of mitmproxy's tests for those options (test_blocklist.py, test_maplocal.py,
/// test_mapremote.py, test_modifyheaders.py, test_modifybody.py, test_anticache/anticomp in test_core). One process
/// carries all the rules; each test reaches a different path.
/// </summary>
public sealed class RulesCommandTests(RulesCommandTests.Fixture fixture, ITestOutputHelper output) : IClassFixture<RulesCommandTests.Fixture>, IDisposable
{
    public void Dispose() => fixture.Proxy.WriteOutputTo(output);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Block_list_answers_with_the_status_and_never_contacts_the_origin(bool tls)
    {
        var before = fixture.BlockedSeenByOrigin;

        var answer = await CurlAsync(tls, "/blocked");

        Assert.StartsWith("HTTP/1.1 403 ", answer.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(before, fixture.BlockedSeenByOrigin);
        await fixture.Proxy.WaitForLineAsync(l => l.Contains(Origin(tls).Url("/blocked").ToString(), StringComparison.Ordinal) && HasTag(l, "block-list"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Block_list_444_closes_the_connection_without_an_answer(bool tls)
    {
        var before = fixture.BlockedSeenByOrigin;

        var answer = await CurlAsync(tls, "/killed");

        Assert.Equal(52, answer.ExitCode); // curl: empty reply from server
        Assert.Equal("", answer.StandardOutput);
        Assert.Equal(before, fixture.BlockedSeenByOrigin);
        await fixture.Proxy.WaitForLineAsync(l => l.Contains(Origin(tls).Url("/killed").ToString() + " -> killed: connection closed without an answer", StringComparison.Ordinal) && HasTag(l, "block-list"));
    }

    [Theory]
    [InlineData(false, "/static/page.html", "200", "text/html", "<p>page</p>")]
    [InlineData(true, "/static/page.html", "200", "text/html", "<p>page</p>")]
    [InlineData(false, "/static/", "200", "text/html", "<p>index</p>")]
    [InlineData(true, "/static/sub/data.json?x=1", "200", "application/json", "{\"a\":1}")]
    [InlineData(false, "/static/sub", "200", "text/html", "<p>sub index</p>")]
    [InlineData(true, "/one-file", "200", "text/plain", "the one file")]
    [InlineData(false, "/static/missing.html", "404", null, "")]
    [InlineData(true, "/static/missing.html", "404", null, "")]
    public async Task Map_local_serves_files_with_their_type_and_404_when_missing(bool tls, string path, string status, string? contentType, string body)
    {
        var answer = await CurlAsync(tls, path);

        var (head, content) = Split(answer.StandardOutput);
        Assert.StartsWith("HTTP/1.1 " + status + " ", head, StringComparison.Ordinal);
        if (contentType is not null)
        {
            Assert.Contains("\r\nContent-Type: " + contentType + "\r\n", head, StringComparison.Ordinal);
        }

        Assert.Equal(body, content);

        // The origin has no such paths either (its 404 would be empty too): the answer must be the rule's.
        await fixture.Proxy.WaitForLineAsync(l => l.Contains(Origin(tls).Url(path).ToString(), StringComparison.Ordinal) && HasTag(l, "map-local"));
    }

    [Theory]
    [InlineData(false, "/static/%2e%2e/secret.txt")]
    [InlineData(true, "/static/%2e%2e/secret.txt")]
    [InlineData(false, "/static/../secret.txt")]
    [InlineData(false, "/static/..%2fsecret.txt")]
    [InlineData(true, "/static/out/secret.txt")] // a symbolic link inside the directory that points outside
    [InlineData(false, "/static/out-file")] // a symbolic link to a file outside
    public async Task Map_local_never_serves_a_file_outside_its_directory(bool tls, string path)
    {
        var answer = await CurlAsync(tls, path, "--path-as-is");

        Assert.StartsWith("HTTP/1.1 404 ", answer.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", answer.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Map_local_follows_a_symbolic_link_that_stays_inside()
    {
        var answer = await CurlAsync(false, "/static/in/data.json");

        Assert.StartsWith("HTTP/1.1 200 ", answer.StandardOutput, StringComparison.Ordinal);
        Assert.Equal("{\"a\":1}", Split(answer.StandardOutput).Body);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Map_remote_sends_the_request_to_the_rewritten_url_with_its_host_header(bool tls)
    {
        var other = tls ? fixture.OtherTls : fixture.OtherPlain;

        var answer = await CurlAsync(tls, "/remote/hello");
        var headers = await CurlAsync(tls, "/remote/headers");

        Assert.Equal("the other side", Split(answer.StandardOutput).Body);
        Assert.Contains($"\nHost: localhost:{other.Port}\n", "\n" + Split(headers.StandardOutput).Body, StringComparison.Ordinal);
        await fixture.Proxy.WaitForLineAsync(l => l.Contains($"localhost:{other.Port}/hello", StringComparison.Ordinal) && HasTag(l, "map-remote"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Modify_headers_sets_and_removes_on_the_side_its_filter_chooses(bool tls)
    {
        var answer = await CurlAsync(tls, "/headers");
        var fromFile = await CurlAsync(tls, "/headers-from-file");

        var (head, seen) = Split(answer.StandardOutput);
        Assert.Contains("X-Rule: on\n", seen, StringComparison.Ordinal);
        Assert.DoesNotContain("User-Agent:", seen, StringComparison.Ordinal);      // ~q with an empty value: removed
        Assert.DoesNotContain("X-Served-By", seen, StringComparison.Ordinal);      // ~s: not on the request
        Assert.Contains("\r\nX-Served-By: interpose\r\n", head, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Rule", head, StringComparison.Ordinal);           // ~q: not on the response
        Assert.Contains("X-File: from a file\n", Split(fromFile.StandardOutput).Body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Modify_body_rewrites_responses_and_requests(bool tls)
    {
        var hello = await CurlAsync(tls, "/hello");
        var echo = await CurlAsync(tls, "/echo", "--data-binary", "my secret stays mine");

        Assert.Equal("hello from rules", Split(hello.StandardOutput).Body);
        Assert.Contains("\r\nContent-Length: 16\r\n", Split(hello.StandardOutput).Head, StringComparison.Ordinal);
        Assert.Equal("my [redacted] stays mine", Split(echo.StandardOutput).Body);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Modify_body_rewrites_the_decoded_body_and_encodes_it_again(bool tls)
    {
        // curl decodes what the Content-Encoding says: a body sent unencoded under "gzip" would fail (exit 61).
        var answer = await CurlAsync(tls, "/gzip", "--compressed");

        var (head, body) = Split(answer.StandardOutput);
        Assert.True(answer.ExitCode == 0, answer.StandardError);
        Assert.Contains("\r\nContent-Encoding: gzip\r\n", head, StringComparison.Ordinal);
        Assert.Equal("rewritten text from origin", body);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Anticache_and_anticomp_change_the_request(bool tls)
    {
        var answer = await CurlAsync(tls, "/headers", "-H", "If-None-Match: \"v1\"", "-H", "If-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT", "-H", "Accept-Encoding: gzip, br");

        var seen = Split(answer.StandardOutput).Body;
        Assert.DoesNotContain("If-None-Match", seen, StringComparison.Ordinal);
        Assert.DoesNotContain("If-Modified-Since", seen, StringComparison.Ordinal);
        Assert.Contains("Accept-Encoding: identity\n", seen, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Stickycookie_sends_kept_cookies_on_matching_requests_until_they_expire(bool tls)
    {
        // curl keeps no cookies of its own here: what the origin sees came from the proxy's jar.
        var before = await CurlAsync(tls, "/whoami");
        await CurlAsync(tls, "/login");
        var kept = await CurlAsync(tls, "/whoami", "-H", "Cookie: mine=1");
        var notMatching = await CurlAsync(tls, "/headers");
        await CurlAsync(tls, "/logout");
        var after = await CurlAsync(tls, "/whoami");

        Assert.Equal("cookie: ", Split(before.StandardOutput).Body);
        Assert.Equal("cookie: session=abc", Split(kept.StandardOutput).Body); // replaces the request's own Cookie
        Assert.DoesNotContain("session=abc", Split(notMatching.StandardOutput).Body, StringComparison.Ordinal); // the filter is ~u /whoami
        Assert.Equal("cookie: ", Split(after.StandardOutput).Body);
        await fixture.Proxy.WaitForLineAsync(l => l.Contains(Origin(tls).Url("/whoami").ToString(), StringComparison.Ordinal) && HasTag(l, "stickycookie"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Stickyauth_lends_the_last_authorization_of_the_host_to_matching_requests_without_one(bool tls)
    {
        var credential = tls ? "Basic dGxzOnNlY3JldA==" : "Basic cGxhaW46c2VjcmV0";

        await CurlAsync(tls, "/hello", "-H", "Authorization: " + credential);
        var lent = await CurlAsync(tls, "/whoauth");
        var own = await CurlAsync(tls, "/whoauth", "-H", "Authorization: Bearer mine");
        var notMatching = await CurlAsync(tls, "/headers");

        Assert.Equal("auth: " + credential, Split(lent.StandardOutput).Body);
        Assert.Equal("auth: Bearer mine", Split(own.StandardOutput).Body);
        Assert.DoesNotContain("Authorization", Split(notMatching.StandardOutput).Body, StringComparison.Ordinal);
        await fixture.Proxy.WaitForLineAsync(l => l.Contains(Origin(tls).Url("/whoauth").ToString(), StringComparison.Ordinal) && HasTag(l, "stickyauth"));
    }

    [Fact]
    public async Task Map_local_modify_headers_and_block_list_apply_to_an_http2_client_in_an_intercepted_tunnel()
    {
        var page = await Curl2Async("/static/page.html");
        var headers = await Curl2Async("/headers");
        var blocked = await Curl2Async("/blocked");
        var killed = await Curl2Async("/killed");

        var (pageHead, pageBody) = Split(page.StandardOutput);
        Assert.StartsWith("HTTP/2 200", pageHead, StringComparison.Ordinal);
        Assert.Contains("\r\ncontent-type: text/html", pageHead, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("<p>page</p>", pageBody);
        var (head, seen) = Split(headers.StandardOutput);
        Assert.StartsWith("HTTP/2 200", head, StringComparison.Ordinal);
        Assert.Contains("X-Rule: on\n", seen, StringComparison.OrdinalIgnoreCase); // the origin may get it over h2, in lower case
        Assert.Contains("\r\nx-served-by: interpose\r\n", head, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("HTTP/2 403", blocked.StandardOutput, StringComparison.Ordinal);
        Assert.NotEqual(0, killed.ExitCode);
        Assert.DoesNotContain("HTTP/2", killed.StandardOutput, StringComparison.Ordinal);
        var url = fixture.Tls.Url("/").ToString().TrimEnd('/');
        await fixture.Proxy.WaitForLineAsync(l => l.Contains(url + "/static/page.html -> 200", StringComparison.Ordinal) && l.Contains("[h2 -> -]", StringComparison.Ordinal) && HasTag(l, "map-local"));
        await fixture.Proxy.WaitForLineAsync(l => l.Contains(url + "/headers -> 200", StringComparison.Ordinal) && l.Contains("[h2 -> ", StringComparison.Ordinal) && HasTag(l, "modify-headers"));
        await fixture.Proxy.WaitForLineAsync(l => l.Contains(url + "/killed -> killed", StringComparison.Ordinal) && l.Contains("[h2 -> -]", StringComparison.Ordinal) && HasTag(l, "block-list"));
    }

    /// <summary>Whether a flow log line lists <paramref name="rule"/> among the rules that acted (<c>-> ... [a,b]</c>).</summary>
    private static bool HasTag(string line, string rule) =>
        line.EndsWith(']') && line[(line.LastIndexOf('[') + 1)..^1].Split(',').Contains(rule);

    private KestrelOrigin Origin(bool tls) => tls ? fixture.Tls : fixture.Plain;

    // HTTP/1.1 to the proxy: the assertions read HTTP/1.1 status lines and a 444 as a closed connection.
    private Task<ProcessResult> CurlAsync(bool tls, string path, params string[] extra) =>
        fixture.Proxy.CurlAsync(Origin(tls).Url("/").ToString().TrimEnd('/') + path, ["--http1.1", .. extra]);

    /// <summary>curl as an HTTP/2 client: ALPN h2 in the intercepted tunnel to the TLS origin.</summary>
    private Task<ProcessResult> Curl2Async(string path) =>
        fixture.Proxy.CurlAsync(fixture.Tls.Url("/").ToString().TrimEnd('/') + path, "--http2");

    private static (string Head, string Body) Split(string response)
    {
        var end = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return end < 0 ? (response, "") : (response[..(end + 2)], response[(end + 4)..]);
    }

    /// <summary>Four origins (plain and TLS, and another of each for map-remote), the files, and one proxy with every rule.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("interpose-rules-").FullName;
        private int _blocked;

        public KestrelOrigin Plain { get; private set; } = null!;

        public KestrelOrigin Tls { get; private set; } = null!;

        public KestrelOrigin OtherPlain { get; private set; } = null!;

        public KestrelOrigin OtherTls { get; private set; } = null!;

        public InterposeProcess Proxy { get; private set; } = null!;

        public int BlockedSeenByOrigin => Volatile.Read(ref _blocked);

        public async Task InitializeAsync()
        {
            Plain = await KestrelOrigin.StartAsync(Map);
            Tls = await KestrelOrigin.StartAsync(Map, TestPki.Issue(TestPki.OriginRoot, "localhost"));
            OtherPlain = await KestrelOrigin.StartAsync(MapOther);
            OtherTls = await KestrelOrigin.StartAsync(MapOther, TestPki.Issue(TestPki.OriginRoot, "localhost"));

            // The mapped directory, a secret beside it, and links out of and within it.
            var root = Directory.CreateDirectory(Path.Combine(_dir, "public")).FullName;
            Directory.CreateDirectory(Path.Combine(root, "sub"));
            File.WriteAllText(Path.Combine(root, "index.html"), "<p>index</p>");
            File.WriteAllText(Path.Combine(root, "page.html"), "<p>page</p>");
            File.WriteAllText(Path.Combine(root, "sub", "data.json"), "{\"a\":1}");
            File.WriteAllText(Path.Combine(root, "sub", "index.html"), "<p>sub index</p>");
            File.WriteAllText(Path.Combine(_dir, "secret.txt"), "secret");
            Directory.CreateSymbolicLink(Path.Combine(root, "out"), _dir);
            File.CreateSymbolicLink(Path.Combine(root, "out-file"), Path.Combine(_dir, "secret.txt"));
            Directory.CreateSymbolicLink(Path.Combine(root, "in"), "sub");
            var oneFile = Path.Combine(_dir, "one.txt");
            File.WriteAllText(oneFile, "the one file");
            var headerFile = Path.Combine(_dir, "header.txt");
            File.WriteAllText(headerFile, "from a file\n");
            var originRoot = Path.Combine(_dir, "origin-root.pem");
            File.WriteAllText(originRoot, TestPki.OriginRoot.ExportCertificatePem());

            Proxy = await InterposeProcess.StartAsync(
                Path.Combine(_dir, "home"),
                "--upstream-ca", originRoot,
                "--block-list", "|~u /blocked|403",
                "--block-list", "|~u /killed|444",
                "--map-local", "|/static/|" + root,
                "--map-local", "|/one-file$|" + oneFile,
                "--map-remote", $"|localhost:{Plain.Port}/remote/|localhost:{OtherPlain.Port}/",
                "--map-remote", $"|localhost:{Tls.Port}/remote/|localhost:{OtherTls.Port}/",
                "--modify-headers", "|~q|X-Rule|on",
                "--modify-headers", "|~q|User-Agent|",
                "--modify-headers", "|~s|X-Served-By|interpose",
                "--modify-headers", "|~q ~u /headers-from-file|X-File|@" + headerFile,
                "--modify-body", "|~s ~u /hello|origin|rules",
                "--modify-body", "|~s ~u /gzip|plain text|rewritten text",
                "--modify-body", "|~q ~u /echo|secret|[redacted]",
                "--anticache",
                "--anticomp",
                "--stickycookie", "~u /whoami",
                "--stickyauth", "~u /whoauth");
        }

        public async Task DisposeAsync()
        {
            await Proxy.DisposeAsync();
            await Plain.DisposeAsync();
            await Tls.DisposeAsync();
            await OtherPlain.DisposeAsync();
            await OtherTls.DisposeAsync();
            Directory.Delete(_dir, recursive: true);
        }

        private void Map(WebApplication app)
        {
            Origins.MapBasics(app);
            MapCookies(app);
            app.MapGet("/headers-from-file", (HttpContext context) => string.Concat(context.Request.Headers.Select(h => h.Key + ": " + h.Value + "\n")));
            app.MapGet("/blocked", () =>
            {
                Interlocked.Increment(ref _blocked);
                return "not blocked";
            });
            app.MapGet("/killed", () =>
            {
                Interlocked.Increment(ref _blocked);
                return "not killed";
            });
            app.MapGet("/gzip", async (HttpContext context) =>
            {
                // Compressed whatever the request asked (anticomp asks for identity): the rule must decode it.
                using var buffer = new MemoryStream();
                using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
                {
                    gzip.Write("plain text from origin"u8);
                }

                context.Response.Headers.ContentEncoding = "gzip";
                await context.Response.Body.WriteAsync(buffer.ToArray());
            });
        }

        private static void MapCookies(WebApplication app)
        {
            app.MapGet("/login", (HttpContext context) =>
            {
                context.Response.Headers.SetCookie = "session=abc; Path=/";
                return "logged in";
            });
            app.MapGet("/logout", (HttpContext context) =>
            {
                context.Response.Headers.SetCookie = "session=; Max-Age=0; Path=/";
                return "logged out";
            });
            app.MapGet("/whoami", (HttpContext context) => "cookie: " + context.Request.Headers.Cookie.ToString());
            app.MapGet("/whoauth", (HttpContext context) => "auth: " + context.Request.Headers.Authorization.ToString());
        }

        private static void MapOther(WebApplication app)
        {
            app.MapGet("/hello", () => "the other side");
            app.MapGet("/headers", (HttpContext context) => string.Concat(context.Request.Headers.Select(h => h.Key + ": " + h.Value + "\n")));
        }
    }
}
