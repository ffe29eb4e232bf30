using System.Net.Http;
using System.Text.RegularExpressions;
using Interpose.Core.Flows;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Interpose.Web.Tests;

/// <summary>
/// The UI in a real browser: Debian's chromium, driven by Playwright (never a downloaded browser), checking what a
/// person would see.
/// </summary>
public sealed partial class BrowserTests(ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>Debian's chromium, which .ci/run installs.</summary>
    private const string ChromiumPath = "/usr/bin/chromium";

    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            // A name that resolves to the UI's address, as DNS rebinding makes one: the Host check must refuse it.
            Args = ["--host-resolver-rules=MAP rebind.example 127.0.0.1", "--no-sandbox"],
        });
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
    }

    [Fact]
    public async Task Flows_appear_live_the_filter_narrows_them_and_a_selected_flow_shows_its_body()
    {
        await using var h = await WebHarness.StartAsync(output);
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("0 flows");

        // The token left the address bar.
        Assert.DoesNotContain("token", page.Url, StringComparison.Ordinal);

        using var client = h.ProxyClient();
        (await client.GetAsync(h.Origin.Url("/json"))).Dispose();
        (await client.GetAsync(h.Origin.Url("/missing"))).Dispose();
        var rows = page.Locator("#viewport .row");
        await Assertions.Expect(rows.Filter(new() { HasText = "/json" })).ToBeVisibleAsync();
        await Assertions.Expect(rows.Filter(new() { HasText = "/missing" })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("2 flows");

        // The filter box, by its label, narrows the list (evaluated by the server).
        var filter = page.GetByLabel("Filter", new() { Exact = true });
        await filter.FillAsync("~c 404");
        await filter.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("1 flow");
        await Assertions.Expect(rows.Filter(new() { HasText = "/json" })).ToHaveCountAsync(0);
        await Assertions.Expect(rows.Filter(new() { HasText = "/missing" })).ToBeVisibleAsync();

        // A filter that does not parse says where, inline.
        await filter.FillAsync("~c (");
        await filter.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#filter-error")).ToContainTextAsync("^");
        await Assertions.Expect(filter).ToHaveAttributeAsync("aria-invalid", "true");

        await filter.FillAsync("");
        await filter.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("2 flows");

        // Selecting a flow shows its body, JSON pretty-printed; j/k move the selection.
        await rows.Filter(new() { HasText = "/json" }).ClickAsync();
        await Assertions.Expect(page.Locator("#details .body-text").Last).ToContainTextAsync("\"name\": \"interpose\"");
        await page.Locator("#viewport").FocusAsync();
        await page.Keyboard.PressAsync("j");
        await Assertions.Expect(page.Locator("#details h2")).ToContainTextAsync("/missing");
        await Assertions.Expect(page.Locator("#details .body-text").Last).ToHaveTextAsync("not here");
        await page.Keyboard.PressAsync("k");
        await Assertions.Expect(page.Locator("#details h2")).ToContainTextAsync("/json");

        // "/" focuses the filter.
        await page.Locator("#viewport").FocusAsync();
        await page.Keyboard.PressAsync("/");
        await Assertions.Expect(filter).ToBeFocusedAsync();

        if (Environment.GetEnvironmentVariable("INTERPOSE_SCREENSHOT") is { Length: > 0 } screenshot)
        {
            await TakeReadmeScreenshotAsync(h, page, client, screenshot);
        }
    }

    /// <summary>README's picture (docs/images/web-ui.png, INTERPOSE_SCREENSHOT=path): a laptop-sized window with a few
    /// more flows (HTTPS over HTTP/2, a 404, a POST), one replayed from the page, and the JSON flow selected.</summary>
    private static async Task TakeReadmeScreenshotAsync(WebHarness h, IPage page, HttpClient client, string path)
    {
        await page.SetViewportSizeAsync(1280, 800);
        using (var http2 = new HttpRequestMessage(HttpMethod.Get, h.TlsOrigin.Url("/json?page=2")) { Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact })
        {
            (await client.SendAsync(http2)).Dispose();
        }

        (await client.GetAsync(h.TlsOrigin.Url("/hello"))).Dispose();
        (await client.PostAsync(h.Origin.Url("/echo?from=readme"), new StringContent("{\"q\":1}"))).Dispose();
        var rows = page.Locator("#viewport .row");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("5 flows");
        await rows.Filter(new() { HasText = "/echo?from=readme" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Replay", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#viewport .row.replay")).ToHaveCountAsync(1);
        await rows.Filter(new() { HasText = "/json?page=2" }).ClickAsync();
        await Assertions.Expect(page.Locator("#details .body-text").Last).ToContainTextAsync("\"name\": \"interpose\"");
        await page.Locator("#viewport").FocusAsync();
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
    }

    [Fact]
    public async Task Intercept_pauses_a_request_and_the_request_edited_in_the_page_reaches_the_origin()
    {
        await using var h = await WebHarness.StartAsync(output);
        var page = await InterceptingPageAsync(h, "~q ~u /echo");
        Assert.Equal("~q ~u /echo", h.Intercept.Filter?.ToString());

        using var client = h.ProxyClient();
        var sending = client.PostAsync(h.Origin.Url("/echo?from=browser"), new StringContent("typed by the client"));
        var paused = page.GetByRole(AriaRole.Group, new() { NameRegex = new Regex("^Paused request: POST") });
        await Assertions.Expect(paused).ToBeVisibleAsync();
        await Assertions.Expect(paused.GetByLabel("Body")).ToHaveValueAsync("typed by the client");
        await paused.GetByLabel("Body").FillAsync("edited in the browser");
        await paused.GetByRole(AriaRole.Button, new() { Name = "Resume" }).ClickAsync();

        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("echo: POST /echo?from=browser |  | edited in the browser", await response.Content.ReadAsStringAsync());
        await Assertions.Expect(paused).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_paused_request_with_only_its_body_edited_keeps_its_header_fields_as_they_came()
    {
        // The page sent its own reading of the header lines with every resume (each name and value trimmed), so the
        // exchange's fields were replaced even when the user edited only the body.
        await using var h = await WebHarness.StartAsync(output);
        var page = await InterceptingPageAsync(h, "~q ~u /echo");
        // Written by hand: HttpClient would join the two X-Dup lines into one.
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, h.Proxy!.Port);
        var stream = client.GetStream();
        var target = h.Origin.Url("/echo?fields");
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(
            $"POST {target} HTTP/1.1\r\nHost: {target.Authority}\r\nx-MiXed-Case:  a   b \r\nX-Dup: one\r\nX-Dup: two\r\n"
            + "Connection: close\r\nContent-Length: 7\r\n\r\nas sent"));
        var sending = new StreamReader(stream).ReadToEndAsync();
        var paused = page.GetByRole(AriaRole.Group, new() { NameRegex = new Regex("^Paused request: POST") });
        await Assertions.Expect(paused.GetByLabel("Body")).ToHaveValueAsync("as sent");
        var sent = (await h.WaitForPausedAsync()).Exchange.Request.Headers.Select(f => (f.Name, f.Value)).ToList();

        await paused.GetByLabel("Body").FillAsync("edited");
        var resume = await page.RunAndWaitForRequestAsync(
            () => paused.GetByRole(AriaRole.Button, new() { Name = "Resume" }).ClickAsync(),
            r => r.Url.EndsWith("/resume", StringComparison.Ordinal));

        using var edit = System.Text.Json.JsonDocument.Parse(resume.PostData!);
        Assert.False(edit.RootElement.TryGetProperty("headers", out _), resume.PostData);
        Assert.Contains("echo: POST /echo?fields |  | edited", await sending.WaitAsync(TimeSpan.FromSeconds(30)), StringComparison.Ordinal);
        var flow = (HttpFlow)await h.WaitForFlowAsync(f => f is HttpFlow http && http.Request.Path == "/echo?fields");
        // The body's new length, and the hop-by-hop Connection the proxy removes (RFC 9110 §7.6.1), aside.
        string[] aside = ["Content-Length", "Connection"];
        var kept = flow.Request.Headers.Select(f => (f.Name, f.Value)).Where(f => !aside.Contains(f.Name)).ToList();
        Assert.Equal(sent.Where(f => !aside.Contains(f.Name)), kept);
        Assert.Contains(("x-MiXed-Case", "a   b"), kept);
        Assert.Equal(["one", "two"], kept.Where(f => f.Name == "X-Dup").Select(f => f.Value));
    }

    [Fact]
    public async Task A_paused_binary_body_is_shown_as_base64_and_replaced_by_an_uploaded_file()
    {
        await using var h = await WebHarness.StartAsync(output);
        var page = await InterceptingPageAsync(h, "~q ~u /echo");

        using var client = h.ProxyClient();
        byte[] binary = [0xff, 0xfe, 0x00, 0x01];
        var sending = client.PostAsync(h.Origin.Url("/echo?binary"), new ByteArrayContent(binary));
        var paused = page.GetByRole(AriaRole.Group, new() { NameRegex = new Regex("^Paused request: POST") });
        await Assertions.Expect(paused.GetByLabel("Body (base64)")).ToHaveValueAsync(Convert.ToBase64String(binary));
        await paused.GetByLabel("Replace body with a file").SetInputFilesAsync(new FilePayload
        {
            Name = "body.bin", MimeType = "application/octet-stream", Buffer = "from a file"u8.ToArray(),
        });
        await Assertions.Expect(paused.GetByLabel("Body (base64)")).ToHaveValueAsync(Convert.ToBase64String("from a file"u8));
        await paused.GetByRole(AriaRole.Button, new() { Name = "Resume" }).ClickAsync();

        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("echo: POST /echo?binary |  | from a file", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Edit_and_replay_sends_only_what_was_edited_and_a_body_keeps_its_CRLF_line_breaks()
    {
        await using var h = await WebHarness.StartAsync(output);
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        using var client = h.ProxyClient();
        const string Multipart = "--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n--b--\r\n";
        (await client.PostAsync(h.Origin.Url("/echo?crlf"), new StringContent(Multipart))).Dispose();
        (await client.GetAsync(h.Origin.Url("/echo?get"))).Dispose();
        var rows = page.Locator("#viewport .row");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("2 flows");

        async Task<ILocator> EditAsync(string path)
        {
            await rows.Filter(new() { HasText = path }).First.ClickAsync();
            await Assertions.Expect(page.Locator("#details h2")).ToContainTextAsync(path);
            await page.GetByRole(AriaRole.Button, new() { Name = "Edit & replay" }).ClickAsync();
            return page.Locator("#details .paused-item");
        }

        async Task<HttpFlow> SendAsync(ILocator editor, string path)
        {
            await editor.GetByLabel("URL").FillAsync(h.Origin.Url(path).ToString());
            var replay = await page.RunAndWaitForRequestAsync(
                () => editor.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync(),
                r => r.Url.EndsWith("/replay", StringComparison.Ordinal));

            // Headers left as shown are not sent: the recorded ones go as they were.
            using var edit = System.Text.Json.JsonDocument.Parse(replay.PostData!);
            Assert.False(edit.RootElement.TryGetProperty("headers", out _), replay.PostData);
            return (HttpFlow)await h.WaitForFlowAsync(f => f is HttpFlow http && http.Request.Path == path);
        }

        // A body left as shown is not sent: the recorded one goes, CRLF and all (a textarea reads back LF only).
        var editor = await EditAsync("/echo?crlf");
        await Assertions.Expect(editor.GetByLabel("Body")).ToHaveValueAsync(Multipart.Replace("\r\n", "\n", StringComparison.Ordinal));
        await SendAsync(editor, "/echo?crlf-unedited");
        Assert.Contains("POST /echo?crlf-unedited |  | " + Multipart, WebHarness.Seen);

        // An edited one keeps the CRLF line breaks it had.
        editor = await EditAsync("/echo?crlf");
        await Assertions.Expect(editor.GetByLabel("Body")).ToHaveValueAsync(Multipart.Replace("\r\n", "\n", StringComparison.Ordinal));
        await editor.GetByLabel("Body").FillAsync("--b\nedited\n--b--\n");
        await SendAsync(editor, "/echo?crlf-edited");
        Assert.Contains("POST /echo?crlf-edited |  | --b\r\nedited\r\n--b--\r\n", WebHarness.Seen);

        // A GET gains no body (no Content-Length: 0).
        editor = await EditAsync("/echo?get");
        var get = await SendAsync(editor, "/echo?get-replayed");
        Assert.Null(get.Request.Headers.Get("Content-Length"));
        Assert.Null(get.Request.Headers.Get("Transfer-Encoding"));
    }

    [Fact]
    public async Task Edit_and_replay_does_not_offer_a_body_the_page_has_only_in_part_and_sends_it_as_recorded()
    {
        await using var h = await WebHarness.StartAsync(output);
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        using var client = h.ProxyClient();
        var large = new string('x', 300 * 1024); // over the page's 256 KiB preview
        (await client.PostAsync(h.Origin.Url("/echo?large"), new StringContent(large))).Dispose();
        var rows = page.Locator("#viewport .row");
        await rows.Filter(new() { HasText = "/echo?large" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Edit & replay" }).ClickAsync();
        var editor = page.Locator("#details .paused-item");

        await Assertions.Expect(editor.GetByLabel("Body")).ToBeDisabledAsync();
        await editor.GetByLabel("URL").FillAsync(h.Origin.Url("/echo?large-replayed").ToString());
        await editor.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();

        await h.WaitForFlowAsync(f => f is HttpFlow http && http.Request.Path == "/echo?large-replayed");
        Assert.Contains("POST /echo?large-replayed |  | " + large, WebHarness.Seen);
    }

    [Fact]
    public async Task A_paused_request_whose_URL_authority_is_edited_takes_the_Host_line_with_it()
    {
        await using var h = await WebHarness.StartAsync(output);
        var page = await InterceptingPageAsync(h, "~q ~u /echo\\?host");
        using var client = h.ProxyClient();
        var sending = client.GetAsync(h.Origin.Url("/echo?host"));
        var paused = page.GetByRole(AriaRole.Group, new() { NameRegex = new Regex("^Paused request: GET") });
        await Assertions.Expect(paused).ToBeVisibleAsync();
        var moved = h.Origin.Url("/echo?host", host: "127.0.0.1").ToString();
        await paused.GetByLabel("URL").FillAsync(moved);
        await paused.GetByRole(AriaRole.Button, new() { Name = "Resume" }).ClickAsync();

        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(30));
        var flow = (HttpFlow)await h.WaitForFlowAsync(f => f is HttpFlow http && http.Request.Path == "/echo?host");
        Assert.Equal("127.0.0.1:" + h.Origin.Port, flow.Request.Headers.Get("Host"));
    }

    /// <summary>Both stores of `run --web`: in memory (without -w) and the SQLite file of -w.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Replay_makes_a_new_flow(bool file)
    {
        await using var h = await WebHarness.StartAsync(output, file: file);
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        var target = "/echo?replay-" + (file ? "file" : "memory");
        using var client = h.ProxyClient();
        (await client.PostAsync(h.Origin.Url(target), new StringContent("again"))).Dispose();
        var rows = page.Locator("#viewport .row");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("1 flow");
        await rows.First.ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Replay", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("2 flows");
        await Assertions.Expect(rows.Filter(new() { HasText = target })).ToHaveCountAsync(2);
        // The new flow, and only it, carries the replay marker (issue 17: replay makes a new flow, marked as such).
        await Assertions.Expect(page.Locator("#viewport .row.replay")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#viewport .row.replay .c-mark")).ToHaveAttributeAsync("title", "replayed request (~replayq)");
        Assert.Equal(2, WebHarness.Seen.Count(s => s == $"POST {target} |  | again"));
        Assert.IsType(file ? typeof(Store.SqliteFlowStore) : typeof(Store.MemoryFlowStore), h.Store);
    }

    [Fact]
    public async Task A_burst_larger_than_a_push_is_counted_and_its_skipped_rows_load_by_position_when_scrolled_to()
    {
        // The web UI's clock holds the live stream in its pause between pushes until the test moves it, so the whole
        // burst is published while the stream waits and one push carries it: its newest TailRows rows and a count of
        // the others, at the positions the server gives them.
        var clock = new Proxy.Tests.Infrastructure.ManualClock();
        await using var h = await WebHarness.StartAsync(output, webClock: clock);
        var page = await NewPageAsync();
        var lists = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var streams = new System.Collections.Concurrent.ConcurrentQueue<string>();
        page.Request += (_, request) =>
        {
            if (request.Url.Contains("/api/flows?", StringComparison.Ordinal))
            {
                lists.Enqueue(new Uri(request.Url).Query);
            }
            else if (request.Url.Contains("/api/events?", StringComparison.Ordinal))
            {
                streams.Enqueue(new Uri(request.Url).Query);
            }
        };

        // The list is the stream's first event: a shown count means the stream is there.
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("0 flows");

        // One flow first: the push that carries it starts the pause.
        var first = WebApiTests.Sample(Guid.NewGuid()) with { Request = WebApiTests.Sample(Guid.Empty).Request with { Path = "/first" } };
        await h.Store.AppendAsync([first]);
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("1 flow");
        await clock.ArmedAsync(WebApi.BatchInterval).WaitAsync(TimeSpan.FromSeconds(30));

        // The burst, as a busy proxy's recorder announces it, during the pause; then the pause ends.
        const int Burst = FlowFeed.TailRows * 10;
        var flows = Enumerable.Range(0, Burst).Select(i => (Flow)(WebApiTests.Sample(Guid.NewGuid()) with { Request = WebApiTests.Sample(Guid.Empty).Request with { Path = "/burst/" + i } })).ToList();
        await h.Store.AppendAsync(flows);
        clock.Advance(WebApi.BatchInterval);
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync((Burst + 1) + " flows");

        // The newest rows came with the stream. Scrolled to the end explicitly: whether the list was still following
        // its tail when thousands of rows arrived at once is not what this test is about.
        await page.Locator("#viewport").EvaluateAsync("v => v.scrollTop = v.scrollHeight");
        await Assertions.Expect(page.Locator("#viewport .row", new() { HasText = "/burst/" + (Burst - 1) })).ToBeVisibleAsync();
        Assert.Empty(lists); // the tail came with the stream: nothing fetched by position yet

        // Scrolled to the top, the rows the stream skipped are loaded from the list, in the server's order.
        await page.Locator("#viewport").EvaluateAsync("v => v.scrollTop = 0");
        await Assertions.Expect(page.Locator("#viewport .row", new() { HasText = "/burst/0" })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#viewport .row.gap")).ToHaveCountAsync(0);
        var rowHeight = await page.Locator("#viewport .row").First.EvaluateAsync<int>("r => Math.round(r.getBoundingClientRect().height)");
        await Assertions.Expect(page.Locator("#viewport .row[style*='translateY(0px)'] .c-url")).ToContainTextAsync("/first");
        await Assertions.Expect(page.Locator($"#viewport .row[style*='translateY({rowHeight}px)'] .c-url")).ToContainTextAsync("/burst/0");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync((Burst + 1) + " flows");

        // One stream (its list first) at the start, then pages fetched by position. The rows were where the server has
        // them, so no fetched page found them drifted and the list never reloaded.
        Assert.Single(streams);
        Assert.Contains("list=", streams.Single(), StringComparison.Ordinal);
        Assert.Contains(lists, q => q.Contains("offset=", StringComparison.Ordinal) && q.Contains("limit=", StringComparison.Ordinal));
        Assert.All(lists, q => Assert.Contains("offset=", q, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_flow_recorded_while_the_live_stream_is_still_connecting_is_in_the_list()
    {
        // The stream's request is held on its way to the server: the page must not read its list before the server has
        // subscribed the stream, or a flow recorded in between (announced to no one, stored after the list was read)
        // would be in neither until the next reload.
        await using var h = await WebHarness.StartAsync(output);
        var page = await NewPageAsync();
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await page.RouteAsync("**/api/events?**", async route =>
        {
            held.TrySetResult();
            await release.Task;
            await route.ContinueAsync();
        });

        await page.GotoAsync(h.Web.Url.ToString());
        await held.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var flow = WebApiTests.Sample(Guid.NewGuid()) with { Request = WebApiTests.Sample(Guid.Empty).Request with { Path = "/meanwhile" } };
        await h.Store.AppendAsync([flow]);
        release.TrySetResult();

        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("1 flow");
        await Assertions.Expect(page.Locator("#viewport .row", new() { HasText = "/meanwhile" })).ToBeVisibleAsync();
    }

    [Fact]
    public async Task Flows_evicted_from_the_memory_store_leave_the_list()
    {
        const int Cap = 50;
        await using var h = await WebHarness.StartAsync(output, memory: new Store.MemoryFlowStoreOptions { MaxFlows = Cap });
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("0 flows");
        var flows = Enumerable.Range(0, Cap + 30).Select(i => (Flow)(WebApiTests.Sample(Guid.NewGuid()) with { Request = WebApiTests.Sample(Guid.Empty).Request with { Path = "/kept/" + i } })).ToList();

        // Written through the store, which announces what it keeps and what it evicts.
        await h.Store.AppendAsync(flows[..Cap]);
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync(Cap + " flows");
        await h.Store.AppendAsync(flows[Cap..]);

        await Assertions.Expect(page.Locator("#viewport .row", new() { HasText = "/kept/" + (Cap + 29) })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync(Cap + " flows");
        await page.Locator("#viewport").EvaluateAsync("v => v.scrollTop = 0");
        await Assertions.Expect(page.Locator("#viewport .row[style*='translateY(0px)']")).ToContainTextAsync("/kept/30");
        await Assertions.Expect(page.Locator("#viewport .row", new() { HasText = "/kept/29" })).ToHaveCountAsync(0);

        // The rows left keep their places for what finds them by id: a change marks its own row, and j/k step from the
        // selected row to its neighbours.
        await h.Store.AppendAsync([flows[33] with { Marker = ":star:" }]);
        var changed = page.Locator("#viewport .row", new() { HasText = "/kept/33" });
        await Assertions.Expect(changed.Locator(".c-mark")).ToHaveTextAsync("●");
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync(Cap + " flows");
        await changed.ClickAsync();
        await Assertions.Expect(page.Locator("#details h2")).ToContainTextAsync("/kept/33");
        await page.Locator("#viewport").FocusAsync();
        await page.Keyboard.PressAsync("j");
        await Assertions.Expect(page.Locator("#details h2")).ToContainTextAsync("/kept/34");
        await page.Keyboard.PressAsync("k");
        await page.Keyboard.PressAsync("k");
        await Assertions.Expect(page.Locator("#details h2")).ToContainTextAsync("/kept/32");
    }

    [Fact]
    public async Task A_deleted_flow_leaves_the_list_whether_its_row_was_loaded_or_not()
    {
        // More flows than the page loads with its list (its newest TailRows): the oldest are placeholders.
        await using var h = await WebHarness.StartAsync(output);
        const int Count = FlowFeed.TailRows + 100;
        var flows = Enumerable.Range(0, Count).Select(i => (Flow)(WebApiTests.Sample(Guid.NewGuid()) with { Request = WebApiTests.Sample(Guid.Empty).Request with { Path = "/row/" + i } })).ToList();
        await h.Store.AppendAsync(flows);
        var page = await NewPageAsync();
        var streams = 0;
        page.Request += (_, request) =>
        {
            if (request.Url.Contains("/api/events?", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref streams);
            }
        };
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync(Count + " flows");

        // A loaded row deleted by another client: it goes, and the list stays as it is.
        (await h.Api.DeleteAsync($"/api/flows/{flows[^1].Id}")).Dispose();
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync((Count - 1) + " flows");
        await Assertions.Expect(page.Locator("#viewport .row", new() { HasText = "/row/" + (Count - 1) })).ToHaveCountAsync(0);

        // Deleted from the page itself: the row goes at once, and the stream's word of it changes nothing.
        await page.Locator("#viewport .row", new() { HasText = "/row/" + (Count - 2) }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync((Count - 2) + " flows");

        // A later event on the same stream (the page reads the paused list when told it changed): once it is handled,
        // the removal's event before it was too.
        var handled = page.WaitForRequestAsync(request => request.Url.Contains("/api/intercept", StringComparison.Ordinal));
        h.Feed.InterceptChanged();
        await handled;
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync((Count - 2) + " flows");
        Assert.Equal(1, Volatile.Read(ref streams));

        // A row the page has not loaded: it cannot find the placeholder, so it reads its list again, where it is.
        (await h.Api.DeleteAsync($"/api/flows/{flows[0].Id}")).Dispose();
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync((Count - 3) + " flows");
        Assert.Equal(2, Volatile.Read(ref streams));
        await page.Locator("#viewport").EvaluateAsync("v => v.scrollTop = 0");
        await Assertions.Expect(page.Locator("#viewport .row[style*='translateY(0px)'] .c-url")).ToContainTextAsync("/row/1");
    }

    [Fact]
    public async Task More_flows_between_two_pushes_than_the_store_keeps_leave_the_list_at_the_stores_cap()
    {
        // The stream is held in its pause while ten flows arrive at a store that keeps three: one push carries the ten
        // new rows and seven evictions, which include rows of that same push.
        const int Cap = 3;
        var clock = new Proxy.Tests.Infrastructure.ManualClock();
        await using var h = await WebHarness.StartAsync(output, memory: new Store.MemoryFlowStoreOptions { MaxFlows = Cap }, webClock: clock);
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("0 flows");
        h.Feed.InterceptChanged();
        await clock.ArmedAsync(WebApi.BatchInterval).WaitAsync(TimeSpan.FromSeconds(30));

        var flows = Enumerable.Range(0, 10).Select(i => (Flow)(WebApiTests.Sample(Guid.NewGuid()) with { Request = WebApiTests.Sample(Guid.Empty).Request with { Path = "/burst/" + i } })).ToList();
        await h.Store.AppendAsync(flows);
        clock.Advance(WebApi.BatchInterval);

        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync(Cap + " flows");
        await Assertions.Expect(page.Locator("#viewport .row .c-url")).ToHaveTextAsync(new[] { "/burst/7", "/burst/8", "/burst/9" }.Select(p => new Regex(Regex.Escape(p) + "$")).ToArray());
    }

    [Fact]
    public async Task A_row_shown_in_place_of_another_keeps_nothing_of_it()
    {
        // A store that keeps one flow: each new flow takes the place (the row node) of the one before, whose cells
        // the page writes over rather than making new ones.
        await using var h = await WebHarness.StartAsync(output, memory: new Store.MemoryFlowStoreOptions { MaxFlows = 1 });
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("0 flows");
        var row = page.Locator("#viewport .row[style*='translateY(0px)']");

        var replayed = WebApiTests.Sample(Guid.NewGuid()) with { Replay = Core.Filters.FilterReplayKind.Request, Error = new FlowError("response", "reset by the origin", true) };
        await h.Store.AppendAsync([replayed]);
        await Assertions.Expect(row.Locator(".c-mark")).ToHaveAttributeAsync("aria-label", "replayed request (~replayq)");
        await Assertions.Expect(row.Locator(".c-status")).ToHaveAttributeAsync("title", "response: reset by the origin");

        var tunnel = new TunnelFlow { Id = Guid.NewGuid(), StartedAt = DateTimeOffset.UnixEpoch, Kind = TunnelKind.TlsPassthrough, Host = "pinned.test", Port = 443 };
        await h.Store.AppendAsync([tunnel]);
        await Assertions.Expect(row.Locator(".c-tls")).ToHaveTextAsync("pass");
        await Assertions.Expect(row.Locator(".c-tls")).ToHaveAttributeAsync("title", "tunnel: tls-passthrough");
        await Assertions.Expect(row.Locator(".c-mark")).ToHaveTextAsync("");
        await Assertions.Expect(row.Locator(".c-mark")).Not.ToHaveAttributeAsync("aria-label", new Regex("."));
        await Assertions.Expect(row.Locator(".c-status")).ToHaveAttributeAsync("title", "");

        var plain = WebApiTests.Sample(Guid.NewGuid());
        await h.Store.AppendAsync([plain]);
        await Assertions.Expect(row.Locator(".c-tls")).ToHaveAttributeAsync("title", "");
        await Assertions.Expect(row.Locator(".c-proto")).ToHaveTextAsync("h1→–");
        await Assertions.Expect(row).Not.ToHaveClassAsync(new Regex("tunnel|replay|failed"));
    }

    [Fact]
    public async Task A_TLS_flow_shows_a_drawn_padlock_its_TLS_version_by_name_and_its_size_and_time_in_their_columns()
    {
        await using var h = await WebHarness.StartAsync(output);
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("0 flows");

        // A loopback exchange: 0.26 ms in all, and a 100 MiB answer recorded as its length only.
        var sample = WebApiTests.Sample(Guid.NewGuid());
        var tls = sample with
        {
            Request = sample.Request with { Scheme = "https", Port = 443 },
            Response = sample.Response! with { Body = new FlowBody(ReadOnlyMemory<byte>.Empty, 100L * 1024 * 1024, sha256: null) },
            Timings = new FlowTimings(null, null, null, 0.05, 0.18, 0.26),
            ClientTls = new FlowTls("Tls13", "TLS_AES_128_GCM_SHA256", "h2", "example.test"),
            ServerTls = new FlowTls("Tls12", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "http/1.1", "example.test"),
        };
        await h.Store.AppendAsync([tls]);
        var row = page.Locator("#viewport .row").Filter(new() { HasText = "/saved" });
        await Assertions.Expect(row).ToBeVisibleAsync();

        // The padlock is the stylesheet's drawing, not an emoji a machine without a colour-emoji font shows as a box.
        await Assertions.Expect(row.Locator(".c-tls")).ToHaveClassAsync(new Regex(@"\btls-on\b"));
        await Assertions.Expect(row.Locator(".c-tls")).ToHaveAttributeAsync("aria-label", "TLS");
        await Assertions.Expect(row.Locator(".c-tls")).ToHaveTextAsync("");
        var mask = await row.Locator(".c-tls").EvaluateAsync<string>("e => getComputedStyle(e, '::before').maskImage || getComputedStyle(e, '::before').webkitMaskImage");
        Assert.StartsWith("url(\"data:image/svg+xml", mask, StringComparison.Ordinal);
        await Assertions.Expect(row.Locator(".c-size")).ToHaveTextAsync("100 MiB");
        await Assertions.Expect(row.Locator(".c-time")).ToHaveTextAsync("260 µs");

        await row.ClickAsync();
        var details = page.Locator("#details");
        await Assertions.Expect(details).ToContainTextAsync("TLS 1.3");
        await Assertions.Expect(details).ToContainTextAsync("TLS 1.2");
        await Assertions.Expect(details).Not.ToContainTextAsync("Tls1");
        await Assertions.Expect(details.Locator(".waterfall")).ToContainTextAsync("130 µs");
    }

    [Fact]
    public async Task A_body_sent_as_octet_stream_is_shown_by_what_it_is_in_the_pretty_view_only()
    {
        await using var h = await WebHarness.StartAsync(output);
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("0 flows");

        // What a static server without a type map sends: a PNG and a JSON file, both as application/octet-stream.
        byte[] png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52];
        var generic = new Core.Http.HttpHeaders();
        generic.Add("Content-Type", "application/octet-stream");
        // A type with a character outside ASCII (obs-text, RFC 9110 §5.5): its body is still shown by its type.
        var latin = new Core.Http.HttpHeaders();
        latin.Add("Content-Type", "application/json; profile=\"caf\u00e9\"");
        var sample = WebApiTests.Sample(Guid.NewGuid());
        await h.Store.AppendAsync([
            sample with { Request = sample.Request with { Path = "/red.png" }, Response = sample.Response! with { Headers = generic, Body = FlowBody.FromBytes(png) } },
            sample with { Id = Guid.NewGuid(), Request = sample.Request with { Path = "/data.json" }, Response = sample.Response! with { Headers = generic, Body = FlowBody.FromBytes("{\"a\":[1,2]}"u8.ToArray()) } },
            sample with { Id = Guid.NewGuid(), Request = sample.Request with { Path = "/latin" }, Response = sample.Response! with { Headers = latin, Body = FlowBody.FromBytes("{\"b\":3}"u8.ToArray()) } },
        ]);
        var rows = page.Locator("#viewport .row");

        await rows.Filter(new() { HasText = "/red.png" }).ClickAsync();
        var details = page.Locator("#details");
        await Assertions.Expect(details.Locator("img.preview-img")).ToHaveCountAsync(1);
        await details.GetByRole(AriaRole.Button, new() { Name = "Raw", Exact = true }).Last.ClickAsync();
        await Assertions.Expect(details.Locator("img.preview-img")).ToHaveCountAsync(0);
        await Assertions.Expect(details.Locator("pre.body-hex").Last).ToContainTextAsync("89 50 4e 47");

        await rows.Filter(new() { HasText = "/data.json" }).ClickAsync();
        await Assertions.Expect(details.Locator(".body-text").Last).ToHaveTextAsync("{\n  \"a\": [\n    1,\n    2\n  ]\n}");

        await rows.Filter(new() { HasText = "/latin" }).ClickAsync();
        await Assertions.Expect(details.Locator(".body-text").Last).ToHaveTextAsync("{\n  \"b\": 3\n}");
    }

    [Fact]
    public async Task Strangers_without_the_token_or_through_another_name_are_refused()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        (await client.GetAsync(h.Origin.Url("/json"))).Dispose();
        await h.WaitForFlowAsync(_ => true);

        // The page without its token: it loads, but the API refuses it, and no flow is shown.
        var page = await NewPageAsync();
        await page.GotoAsync(h.WebRoot.ToString());
        await Assertions.Expect(page.Locator("#details")).ToContainTextAsync("Not authorized");
        await Assertions.Expect(page.Locator("#viewport .row")).ToHaveCountAsync(0);

        // A name that resolves to the UI (DNS rebinding): refused outright, token or not.
        var rebound = await page.GotoAsync($"http://rebind.example:{h.Web.EndPoint.Port}/?token={h.Web.Token}");
        Assert.Equal(403, rebound!.Status);
    }

    [Fact]
    public async Task Tunnels_and_replayed_flows_are_marked_in_the_list_and_described_in_the_details()
    {
        var replayed = WebApiTests.Sample(Guid.NewGuid()) with
        {
            Replay = Core.Filters.FilterReplayKind.Request,
            Tags = new Dictionary<string, string>(StringComparer.Ordinal) { ["client-replay"] = "0192f0aa-0000-7000-8000-000000000001" },
        };
        var tunnel = new TunnelFlow
        {
            Id = Guid.NewGuid(), StartedAt = DateTimeOffset.UnixEpoch, Kind = TunnelKind.TlsPassthrough, Host = "pinned.test", Port = 443,
            Sni = "pinned.test", BytesFromClient = 517, BytesFromServer = 4096, DurationMs = 250,
            Client = new FlowEndpoint("127.0.0.1", 50000), Server = new FlowEndpoint("127.0.0.1", 443),
        };
        await using var h = await WebHarness.StartAsync(output, readOnly: true, seed: store => store.AppendAsync([replayed, tunnel]).AsTask());
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("2 flows");

        var tunnelRow = page.Locator("#viewport .row.tunnel");
        await Assertions.Expect(tunnelRow).ToContainTextAsync("pinned.test:443");
        await Assertions.Expect(tunnelRow.Locator(".c-proto")).ToHaveTextAsync("tunnel");
        await Assertions.Expect(tunnelRow.Locator(".c-tls")).ToHaveTextAsync("pass");
        var replayRow = page.Locator("#viewport .row.replay");
        await Assertions.Expect(replayRow.Locator(".c-mark")).ToHaveTextAsync("↻");
        await Assertions.Expect(replayRow.Locator(".c-mark")).ToHaveAttributeAsync("title", "replayed request (~replayq)");

        await tunnelRow.ClickAsync();
        var details = page.Locator("#details");
        await Assertions.Expect(details.Locator("h3", new() { HasText = "Tunnel" })).ToBeVisibleAsync();
        await Assertions.Expect(details).ToContainTextAsync("tls-passthrough");
        await Assertions.Expect(details).ToContainTextAsync("517 bytes");
        await Assertions.Expect(details).ToContainTextAsync("4096 bytes");

        await replayRow.ClickAsync();
        await Assertions.Expect(details.Locator(".replay-note")).ToHaveTextAsync("↻ replayed request (~replayq)");
        await Assertions.Expect(details).ToContainTextAsync("client-replay");
    }

    [Fact]
    public async Task A_WebSockets_messages_are_listed_in_its_details_text_as_text_and_binary_as_hex()
    {
        var flow = WebApiTests.Sample(Guid.NewGuid()) with
        {
            Response = new FlowResponse { StatusCode = 101, Reason = "Switching Protocols", HttpVersion = "HTTP/1.1", Headers = new Core.Http.HttpHeaders { { "Upgrade", "websocket" } } },
            WebSocket = new FlowWebSocket
            {
                Messages =
                [
                    new FlowWebSocketMessage(FromClient: true, WebSocketOpcode.Text, 3, "{\"subscribe\":\"prices\"}"u8.ToArray(), 22),
                    new FlowWebSocketMessage(FromClient: false, WebSocketOpcode.Binary, 7.5, new byte[] { 0xCA, 0xFE }, 2),
                    new FlowWebSocketMessage(FromClient: false, WebSocketOpcode.Close, 9, new byte[] { 0x03, 0xE9 }, 2),
                ],
                CloseCode = 1001,
                CloseReason = "going away",
                ClosedByClient = false,
            },
        };
        await using var h = await WebHarness.StartAsync(output, readOnly: true, seed: store => store.AppendAsync([flow]).AsTask());
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        await page.Locator("#viewport .row").First.ClickAsync();

        var messages = page.Locator("#details .ws-messages tr");
        await Assertions.Expect(messages).ToHaveCountAsync(3);
        await Assertions.Expect(messages.Nth(0)).ToContainTextAsync("{\"subscribe\":\"prices\"}");
        await Assertions.Expect(messages.Nth(0)).ToContainTextAsync("→");
        await Assertions.Expect(messages.Nth(1)).ToContainTextAsync("cafe");
        await Assertions.Expect(messages.Nth(1)).ToContainTextAsync("←");
        await Assertions.Expect(page.Locator("#details")).ToContainTextAsync("by the server: 1001 going away");
    }

    [Fact]
    public async Task A_list_of_100000_flows_keeps_only_the_visible_rows_in_the_page()
    {
        const int Count = 100_000;
        await using var h = await WebHarness.StartAsync(output, readOnly: true, seed: store => store.AppendAsync(
            [.. Enumerable.Range(0, Count).Select(i => (Flow)(WebApiTests.Sample(Guid.NewGuid()) with { Request = WebApiTests.Sample(Guid.Empty).Request with { Path = "/item/" + i } }))]).AsTask());
        var page = await NewPageAsync();
        var started = System.Diagnostics.Stopwatch.StartNew();
        await page.GotoAsync(h.Web.Url.ToString());
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("100000 flows", new() { Timeout = 60_000 });
        output.WriteLine($"100,000 rows listed in {started.ElapsedMilliseconds} ms");
        var inDom = await page.Locator("#viewport .row").CountAsync();
        Assert.InRange(inDom, 1, 200);

        // The end of the list is reached by keys, and still only a window of rows exists.
        await page.Locator("#viewport").FocusAsync();
        await page.Locator("#viewport").EvaluateAsync("v => v.scrollTop = v.scrollHeight");
        await Assertions.Expect(page.Locator("#viewport .row", new() { HasText = "/item/99999" })).ToBeVisibleAsync();
        Assert.InRange(await page.Locator("#viewport .row").CountAsync(), 1, 200);

        // The middle and the start, scrolled to, load by position.
        await page.Locator("#viewport").EvaluateAsync("v => v.scrollTop = 50000 * 22");
        await Assertions.Expect(page.Locator("#viewport .row", new() { HasText = "/item/50000" }).First).ToBeVisibleAsync();
        await page.Locator("#viewport").EvaluateAsync("v => v.scrollTop = 0");
        await Assertions.Expect(page.Locator("#viewport .row", new() { HasText = "/item/0" }).First).ToBeVisibleAsync();
    }

    /// <summary>A page of the UI with <paramref name="filter"/> typed into its Intercept box and in force.</summary>
    private async Task<IPage> InterceptingPageAsync(WebHarness h, string filter)
    {
        var page = await NewPageAsync();
        await page.GotoAsync(h.Web.Url.ToString());
        var intercept = page.GetByLabel("Intercept", new() { Exact = true });
        await intercept.FillAsync(filter);
        // The filter is set when the page's PUT is answered.
        await page.RunAndWaitForResponseAsync(() => intercept.PressAsync("Enter"), r => r.Url.EndsWith("/api/intercept", StringComparison.Ordinal) && r.Request.Method == "PUT");
        return page;
    }

    private async Task<IPage> NewPageAsync()
    {
        var context = await _browser!.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 760 } });
        context.SetDefaultTimeout(30_000);
        var page = await context.NewPageAsync();
        page.Console += (_, message) => output.WriteLine("browser: " + message.Text);
        page.PageError += (_, error) => output.WriteLine("page error: " + error);
        return page;
    }
}
