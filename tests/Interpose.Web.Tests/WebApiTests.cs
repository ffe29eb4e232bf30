using System.Net;
using System.Net.Http;
using System.Text;
using System.Text.Json;
using Interpose.Core.Flows;
using Interpose.Proxy.Intercept;
using Interpose.Proxy.Tests.Infrastructure;
using Interpose.Store;
using Xunit.Abstractions;

namespace Interpose.Web.Tests;

/// <summary>The web UI's API over real sockets: security checks, input errors, the live stream, actions, intercept.</summary>
public sealed class WebApiTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Api_calls_without_the_token_or_with_a_wrong_one_are_refused()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var stranger = new HttpClient { BaseAddress = h.Api.BaseAddress };
        using (var response = await stranger.GetAsync("/api/flows"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        stranger.DefaultRequestHeaders.Add(WebUiServer.TokenHeader, h.Web.Token[..^1] + (h.Web.Token[^1] == 'A' ? 'B' : 'A'));
        using (var response = await stranger.GetAsync("/api/events"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        // The token in the query string (as the printed URL carries it) is not enough for the API.
        using (var response = await new HttpClient().GetAsync(new Uri(h.WebRoot, "/api/flows?token=" + h.Web.Token)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        using (var response = await h.Api.GetAsync("/api/flows"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Theory]
    [InlineData("GET", "/API/info")]
    [InlineData("GET", "/Api/flows?tail=2")]
    [InlineData("POST", "/aPi/clear")]
    [InlineData("PUT", "/API/intercept")]
    public async Task Api_paths_in_another_case_need_the_token_too(string method, string path)
    {
        // Routing matches paths case-insensitively: /API/clear reaches the handler of /api/clear.
        await using var h = await WebHarness.StartAsync(output);
        using var stranger = new HttpClient { BaseAddress = h.Api.BaseAddress };
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "GET" ? null : new StringContent("{}") };

        using var response = await stranger.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task The_page_and_its_assets_are_served_without_the_token()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var stranger = new HttpClient { BaseAddress = h.Api.BaseAddress };

        using var page = await stranger.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        var asset = System.Text.RegularExpressions.Regex.Match(html, "/assets/[A-Za-z0-9._-]+").Value;
        Assert.NotEmpty(asset);
        using var script = await stranger.GetAsync(asset);
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("127.0.0.1.nip.io")]
    [InlineData("127.0.0.1:1")]
    public async Task A_request_whose_Host_is_not_the_UI_is_refused_even_with_the_token(string host)
    {
        await using var h = await WebHarness.StartAsync(output);
        var hostHeader = host.Contains(':', StringComparison.Ordinal) ? host : host + ":" + h.Web.EndPoint.Port;
        foreach (var path in new[] { "/", "/api/flows" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Host = hostHeader;
            using var response = await h.Api.SendAsync(request);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        }

        // localhost and the IP literal are the UI's own names.
        foreach (var own in new[] { "localhost", "127.0.0.1" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/info");
            request.Headers.Host = own + ":" + h.Web.EndPoint.Port;
            using var response = await h.Api.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task Every_answer_carries_the_content_security_policy_and_nosniff_and_assets_have_etags()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var plain = new HttpClient { BaseAddress = h.Api.BaseAddress };
        foreach (var (client, path) in new[] { (plain, "/"), (plain, "/assets/app.js"), (plain, "/api/flows"), (h.Api, "/api/flows"), (plain, "/nothing") })
        {
            using var response = await client.GetAsync(path);
            Assert.Equal("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:", string.Join(",", response.Headers.GetValues("Content-Security-Policy")));
            Assert.Equal("nosniff", string.Join(",", response.Headers.GetValues("X-Content-Type-Options")));
        }

        using var first = await plain.GetAsync("/assets/app.js");
        Assert.Equal("text/javascript; charset=utf-8", first.Content.Headers.ContentType!.ToString());
        var etag = first.Headers.ETag!;
        using var again = new HttpRequestMessage(HttpMethod.Get, "/assets/app.js");
        again.Headers.IfNoneMatch.Add(etag);
        using var cached = await plain.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, cached.StatusCode);

        // No remote asset and no inline script in the page.
        var page = await plain.GetStringAsync("/");
        Assert.DoesNotContain("http://", page, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", page, StringComparison.Ordinal);
        Assert.Matches("<script type=\"module\" src=\"/assets/app.js\"></script>", page);
        Assert.DoesNotMatch("<script>|<script [^>]*>[^<]", page);
    }

    [Theory]
    [InlineData("GET", "/api/flows?filter=~c%20(", null, "filter: ", 3)]
    [InlineData("GET", "/api/flows?filter=(~q", null, "filter: ", 3)]
    [InlineData("GET", "/api/flows?highlight=~x", null, "highlight: ", 0)]
    [InlineData("GET", "/api/flows?limit=abc", null, "limit", null)]
    [InlineData("GET", "/api/flows?limit=-1", null, "limit", null)]
    [InlineData("GET", "/api/flows?limit=0", null, "limit", null)]
    [InlineData("GET", "/api/flows?limit=100001", null, "limit", null)]
    [InlineData("GET", "/api/flows?offset=-1", null, "offset", null)]
    [InlineData("GET", "/api/flows?offset=1e3", null, "offset", null)]
    [InlineData("GET", "/api/flows?offset=99999999999", null, "offset", null)]
    [InlineData("GET", "/api/flows?tail=0", null, "tail", null)]
    [InlineData("GET", "/api/flows?tail=10&offset=2", null, "tail: not with offset", null)]
    [InlineData("GET", "/api/flows?tail=10&limit=2", null, "tail: not with offset", null)]
    [InlineData("GET", "/api/flows/not-a-guid", null, "id", null)]
    [InlineData("GET", "/api/flows/00000000-0000-0000-0000-000000000001/body/sideways", null, "side", null)]
    [InlineData("GET", "/api/events?filter=~d", null, "filter: ", 2)]
    [InlineData("PATCH", "/api/flows/{id}", "{not json", "JSON", null)]
    [InlineData("PATCH", "/api/flows/{id}", "null", "JSON", null)]
    [InlineData("PATCH", "/api/flows/{id}", "[1,2]", "JSON", null)]
    [InlineData("PUT", "/api/intercept", "{\"filter\":\"~c (\"}", "filter: ", 3)]
    [InlineData("POST", "/api/flows/{id}/replay", "{\"url\":\"ftp://x/\"}", "url", null)]
    [InlineData("POST", "/api/flows/{id}/replay", "{\"headers\":[[\"bad name\",\"v\"]]}", "headers", null)]
    [InlineData("POST", "/api/flows/{id}/replay", "{\"bodyBase64\":\"***\"}", "base64", null)]
    [InlineData("POST", "/api/flows/{id}/replay", "{\"method\":\"GE(T\"}", "method", null)]
    [InlineData("POST", "/api/flows/{id}/replay", "{\"method\":\"a/b\"}", "method", null)]
    [InlineData("POST", "/api/flows/{id}/replay", "{\"method\":\"\\\"GET\\\"\"}", "method", null)]
    [InlineData("POST", "/api/har", "{\"ids\":[\"nope\"]}", "JSON", null)]
    public async Task Malformed_input_is_a_400_with_a_reason(string method, string path, string? json, string reason, int? position)
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        (await client.GetAsync(h.Origin.Url("/hello"))).Dispose();
        var flow = await h.WaitForFlowAsync(_ => true);
        using var request = new HttpRequestMessage(new HttpMethod(method), path.Replace("{id}", flow.Id.ToString(), StringComparison.Ordinal));
        if (json is not null)
        {
            request.Content = WebHarness.Json(json);
        }

        using var response = await h.Api.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{response.StatusCode}: {body}");
        using var error = JsonDocument.Parse(body);
        Assert.Contains(reason, error.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        if (position is not null)
        {
            Assert.Equal(position, error.RootElement.GetProperty("position").GetInt32());
        }
    }

    [Fact]
    public async Task Flows_are_listed_filtered_and_highlighted_by_the_server()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        (await client.GetAsync(h.Origin.Url("/hello"))).Dispose();
        (await client.GetAsync(h.Origin.Url("/missing"))).Dispose();
        await h.WaitForFlowAsync(f => f is HttpFlow { Response.StatusCode: 404 });
        await h.WaitForFlowAsync(f => f is HttpFlow { Response.StatusCode: 200 });

        using var all = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows?highlight=~c%20404"));
        var rows = all.RootElement.GetProperty("flows").EnumerateArray().ToList();
        Assert.Equal(2, rows.Count);
        Assert.Equal([false, true], rows.Select(r => r.GetProperty("highlight").GetBoolean()));
        Assert.All(rows, r => Assert.Equal("1.1", r.GetProperty("clientProtocol").GetString()));

        using var filtered = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows?filter=" + Uri.EscapeDataString("~c 404")));
        var row = Assert.Single(filtered.RootElement.GetProperty("flows").EnumerateArray());
        Assert.EndsWith("/missing", row.GetProperty("url").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Rows_are_read_by_position_and_the_tail_carries_its_position_and_the_count(bool file)
    {
        await using var h = await WebHarness.StartAsync(output, file: file);
        var flows = Enumerable.Range(0, 30).Select(i => (Flow)(Sample(Guid.NewGuid()) with
        {
            Request = Sample(Guid.Empty).Request with { Path = "/page/" + i },
            Response = Sample(Guid.Empty).Response! with { StatusCode = i % 3 == 0 ? 404 : 200 },
        })).ToList();
        await h.Store.AppendAsync(flows);

        using (var page = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows?offset=5&limit=4")))
        {
            Assert.Equal(["/page/5", "/page/6", "/page/7", "/page/8"], Paths(page));
            Assert.True(page.RootElement.GetProperty("truncated").GetBoolean());
            Assert.Equal(5, page.RootElement.GetProperty("offset").GetInt32());
            Assert.False(page.RootElement.TryGetProperty("total", out _));
        }

        // Positions among the matching flows: the filter is applied before the offset (~c 404: /page/0, 3, 6, ...).
        using (var page = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows?offset=2&limit=3&filter=" + Uri.EscapeDataString("~c 404"))))
        {
            Assert.Equal(["/page/6", "/page/9", "/page/12"], Paths(page));
        }

        // A filter the SQLite store cannot push down into SQL (a body regex) skips in memory, to the same rows.
        using (var page = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows?offset=28&limit=5&filter=" + Uri.EscapeDataString("~bs saved"))))
        {
            Assert.Equal(["/page/28", "/page/29"], Paths(page));
            Assert.False(page.RootElement.GetProperty("truncated").GetBoolean());
        }

        using (var tail = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows?tail=3&filter=" + Uri.EscapeDataString("~c 404"))))
        {
            Assert.Equal(["/page/21", "/page/24", "/page/27"], Paths(tail));
            Assert.Equal(7, tail.RootElement.GetProperty("offset").GetInt32());
            Assert.Equal(10, tail.RootElement.GetProperty("total").GetInt64());
        }

        using (var past = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows?offset=1000&limit=10")))
        {
            Assert.Empty(Paths(past));
        }

        static List<string> Paths(JsonDocument list) =>
            [.. list.RootElement.GetProperty("flows").EnumerateArray().Select(r => new Uri(r.GetProperty("url").GetString()!).AbsolutePath)];
    }

    [Fact]
    public async Task Flows_evicted_from_the_memory_store_are_counted_to_each_browser_by_its_filter()
    {
        await using var h = await WebHarness.StartAsync(output, memory: new MemoryFlowStoreOptions { MaxFlows = 4 });
        using var all = await OpenEventsAsync(h, "?tail=1");
        using var notFound = await OpenEventsAsync(h, "?tail=1&filter=" + Uri.EscapeDataString("~c 404"));
        var flows = Enumerable.Range(0, 6).Select(i => (Flow)(Sample(Guid.NewGuid()) with
        {
            Response = Sample(Guid.Empty).Response! with { StatusCode = i == 0 ? 404 : 200 },
        })).ToList();

        // As the recorder writes through the store to the feed: the first two flows go, and the stream says so.
        foreach (var flow in flows)
        {
            await ((Core.Flows.IFlowSink)h.Store).WriteAsync(flow, CancellationToken.None);
        }

        await ((Core.Flows.IFlowSink)h.Store).FlushAsync(CancellationToken.None);
        Assert.Equal(4, await h.Store.CountAsync());
        Assert.Equal("2", await NextEvictedAsync(all));
        Assert.Equal("1", await NextEvictedAsync(notFound));

        // The store announces the new flows before their evictions; a push sends its new rows before its evictions.
        static async Task<string> NextEvictedAsync(Stream stream)
        {
            while (true)
            {
                var (name, data) = await ReadEventAsync(stream);
                if (name == "evicted")
                {
                    return data;
                }

                Assert.Contains(name, new[] { "flows", "skipped" });
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_stream_that_begins_with_its_list_pushes_each_flow_the_list_does_not_have_once(bool file)
    {
        // Flows written but not yet announced when the list is read: the in-memory store has them readable already
        // (they are in the list, and announced after it); SQLite has them in its open batch (not in the list, announced
        // at the commit). Either way every flow must reach the browser exactly once.
        var clock = new ManualClock();
        await using var h = await WebHarness.StartAsync(output, file: file, webClock: clock);
        var flows = await WriteUnannouncedAsync(h, total: 4, written: 3);

        var (stream, listed) = await OpenListedEventsAsync(h);
        using var _ = stream;
        Assert.Equal(file ? [] : flows[..3].Select(f => f.Id), listed);

        await AnnounceTheWrittenThenAppendAsync(h, stream, clock, flows[3]);

        var (name, data) = await ReadEventAsync(stream);
        Assert.Equal("flows", name);
        Assert.Equal(flows.Select(f => f.Id), listed.Concat(Ids(data)));
    }

    [Fact]
    public async Task A_stream_that_begins_with_its_list_counts_only_the_evictions_of_flows_the_list_has()
    {
        var clock = new ManualClock();
        await using var h = await WebHarness.StartAsync(output, memory: new MemoryFlowStoreOptions { MaxFlows = 3 }, webClock: clock);

        // Five written, two of them evicted, nothing announced yet: the list has the last three.
        var flows = await WriteUnannouncedAsync(h, total: 6, written: 5);
        var (stream, listed) = await OpenListedEventsAsync(h);
        using var _ = stream;
        Assert.Equal(flows[2..5].Select(f => f.Id), listed);

        // The late announcement of the five and their two evictions changes nothing; the sixth evicts one of the list's.
        await AnnounceTheWrittenThenAppendAsync(h, stream, clock, flows[5]);

        var (name, data) = await ReadEventAsync(stream);
        Assert.Equal("flows", name);
        Assert.Equal([flows[5].Id], Ids(data));
        Assert.Equal(("evicted", "1"), await ReadEventAsync(stream));
    }

    [Fact]
    public async Task A_flow_marked_in_the_push_that_brings_it_reaches_the_browser_marked()
    {
        // A tail-following stream keeps a new flow as first stored until its push; a mark set before that push must
        // reach the browser after the new row, or the row shows without it.
        var clock = new ManualClock();
        await using var h = await WebHarness.StartAsync(output, webClock: clock);
        var (stream, _) = await OpenListedEventsAsync(h);
        using var _ = stream;
        await PauseAfterAPushAsync(h, stream, clock);
        var flow = Sample(Guid.NewGuid());
        await h.Store.AppendAsync([flow]);
        await h.Store.AppendAsync([flow with { Marker = ":star:" }]);
        clock.Advance(WebApi.BatchInterval);

        var (name, data) = await ReadEventAsync(stream);
        Assert.Equal("flows", name);
        Assert.Equal([flow.Id], Ids(data));
        (name, data) = await ReadEventAsync(stream);
        Assert.Equal("changed", name);
        using var changed = JsonDocument.Parse(data);
        Assert.Equal(":star:", Assert.Single(changed.RootElement.EnumerateArray()).GetProperty("marker").GetString());
    }

    /// <summary><paramref name="total"/> sample flows, the first <paramref name="written"/> of them written through the
    /// store as the recorder writes (not flushed: not announced yet).</summary>
    private static async Task<List<Flow>> WriteUnannouncedAsync(WebHarness h, int total, int written)
    {
        var flows = Enumerable.Range(0, total).Select(_ => (Flow)Sample(Guid.NewGuid())).ToList();
        foreach (var flow in flows[..written])
        {
            await ((Core.Flows.IFlowSink)h.Store).WriteAsync(flow, CancellationToken.None);
        }

        return flows;
    }

    /// <summary>A tail-following stream that begins with its list; the list's rows, checked to be the whole list.</summary>
    private static async Task<(Stream Stream, List<Guid> Listed)> OpenListedEventsAsync(WebHarness h)
    {
        var stream = await OpenEventsAsync(h, "?tail=1&list=50");
        var (name, data) = await ReadEventAsync(stream);
        Assert.Equal("list", name);
        using var list = JsonDocument.Parse(data);
        var listed = Ids(list.RootElement.GetProperty("flows").GetRawText());
        Assert.Equal(listed.Count, list.RootElement.GetProperty("total").GetInt64());
        Assert.Equal(0, list.RootElement.GetProperty("offset").GetInt32());
        return (stream, listed);
    }

    /// <summary>Makes the stream push (the paused list changed) and waits until it sits in its pause after that push, so
    /// that what is announced next all goes into one push when the clock moves.</summary>
    /// <summary>In the pause after a push: the written flows are announced late (their batch committed), then
    /// <paramref name="next"/> is appended, and the next push goes out.</summary>
    private static async Task AnnounceTheWrittenThenAppendAsync(WebHarness h, Stream stream, ManualClock clock, Core.Flows.Flow next)
    {
        await PauseAfterAPushAsync(h, stream, clock);
        await ((Core.Flows.IFlowSink)h.Store).FlushAsync(CancellationToken.None);
        await h.Store.AppendAsync([next]);
        clock.Advance(WebApi.BatchInterval);
    }

    private static async Task PauseAfterAPushAsync(WebHarness h, Stream stream, ManualClock clock)
    {
        h.Feed.InterceptChanged();
        Assert.Equal("intercept", (await ReadEventAsync(stream)).Name);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await clock.ArmedAsync(WebApi.BatchInterval).WaitAsync(deadline.Token);
    }

    /// <summary>The ids of a JSON array of rows.</summary>
    private static List<Guid> Ids(string rows)
    {
        using var document = JsonDocument.Parse(rows);
        return [.. document.RootElement.EnumerateArray().Select(r => r.GetProperty("id").GetGuid())];
    }

    [Fact]
    public async Task The_live_stream_pushes_new_flows_that_match_its_filter_in_batches()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var stream = await OpenEventsAsync(h, "?filter=" + Uri.EscapeDataString("~u /echo"));
        using var client = h.ProxyClient();
        (await client.GetAsync(h.Origin.Url("/hello"))).Dispose();
        (await client.PostAsync(h.Origin.Url("/echo"), new StringContent("pushed"))).Dispose();

        var (name, data) = await ReadEventAsync(stream);
        Assert.Equal("flows", name);
        using var rows = JsonDocument.Parse(data);
        var row = Assert.Single(rows.RootElement.EnumerateArray());
        Assert.Equal("POST", row.GetProperty("method").GetString());
        Assert.Equal(200, row.GetProperty("status").GetInt32());
        Assert.Equal(1, h.Feed.SubscriberCount);
    }

    [Fact]
    public async Task A_browser_that_goes_away_mid_stream_leaves_no_subscriber_behind()
    {
        await using var h = await WebHarness.StartAsync(output);
        var stream = await OpenEventsAsync(h, "");
        Assert.Equal(1, h.Feed.SubscriberCount);
        stream.Dispose();

        // The next push finds the connection gone and the stream ends: wait for the feed to drop it.
        using var client = h.ProxyClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (h.Feed.SubscriberCount > 0)
        {
            (await client.GetAsync(h.Origin.Url("/hello"), timeout.Token)).Dispose();
            await h.WaitForFlowAsync(_ => true);
        }

        Assert.Equal(0, h.Feed.SubscriberCount);
    }

    [Fact]
    public async Task After_a_push_that_skipped_rows_the_live_stream_pauses_longer_until_a_push_skips_none()
    {
        // The UI's clock holds the stream in its pause between pushes until the test moves it; which pause the stream
        // takes is the timer it arms.
        var clock = new ManualClock();
        await using var h = await WebHarness.StartAsync(output, webClock: clock);
        using var stream = await OpenEventsAsync(h, "?tail=1");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        var first = Sample(Guid.NewGuid());
        await h.Store.AppendAsync([first]);
        Assert.Equal("flows", (await ReadEventAsync(stream)).Name);
        await clock.ArmedAsync(WebApi.BatchInterval).WaitAsync(deadline.Token);

        // More new rows than a push carries arrive in that pause: the push skips the oldest, and the pause after it is
        // the long one.
        var burst = Enumerable.Range(0, FlowFeed.TailRows + 5).Select(_ => (Flow)Sample(Guid.NewGuid())).ToList();
        await h.Store.AppendAsync(burst);
        clock.Advance(WebApi.BatchInterval);
        Assert.Equal(("skipped", "5"), await ReadEventAsync(stream));
        Assert.Equal("flows", (await ReadEventAsync(stream)).Name);
        await clock.ArmedAsync(WebApi.BusyBatchInterval).WaitAsync(deadline.Token);

        // One flow in the long pause: its push skips nothing, and the pause is the short one again.
        await h.Store.AppendAsync([Sample(Guid.NewGuid())]);
        clock.Advance(WebApi.BusyBatchInterval);
        Assert.Equal("flows", (await ReadEventAsync(stream)).Name);
        await clock.ArmedAsync(WebApi.BatchInterval, times: 2).WaitAsync(deadline.Token);
    }

    [Fact]
    public async Task Stopping_the_UI_ends_an_open_event_stream_instead_of_waiting_for_it()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var stream = await OpenEventsAsync(h, "?tail=1");
        var stopping = h.Web.DisposeAsync().AsTask();

        // The server ends the response (the last chunk, then end of stream). A stream the server did not end would be
        // aborted at Kestrel's shutdown timeout (30 s): the read would throw ("the response ended prematurely"). The
        // deadline only catches a hang.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var buffer = new byte[256];
        while (await stream.ReadAsync(buffer, deadline.Token) > 0)
        {
        }

        await stopping.WaitAsync(deadline.Token);
        Assert.Equal(0, h.Feed.SubscriberCount);
    }

    [Fact]
    public async Task The_UIs_own_traffic_is_never_recorded_nor_paused_even_through_the_proxy()
    {
        await using var h = await WebHarness.StartAsync(output);
        foreach (var path in new[] { "/api/info", "/api/flows", "/api/intercept" })
        {
            (await h.Api.GetAsync(path)).Dispose();
        }

        (await new HttpClient().GetAsync(h.WebRoot)).Dispose();

        // A browser that sends everything to the proxy (no loopback bypass) loads the UI through it, while an
        // intercept filter that pauses every request is on: the UI's calls pass, and none of them is a flow.
        h.Intercept.Filter = Core.Filters.FlowFilter.Parse("~q");
        using var client = h.ProxyClient();
        using (var page = await client.GetAsync(h.WebRoot).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        }

        var localhost = new UriBuilder(h.WebRoot) { Host = "localhost", Path = "/api/info" }.Uri;
        using (var call = new HttpRequestMessage(HttpMethod.Get, localhost))
        {
            call.Headers.Add(WebUiServer.TokenHeader, h.Web.Token);
            using var info = await client.SendAsync(call).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.OK, info.StatusCode);
        }

        Assert.Empty(h.Intercept.Paused);

        // A flow through the proxy afterwards: once it is stored, anything before it would be too.
        h.Intercept.Filter = null;
        (await client.GetAsync(h.Origin.Url("/hello"))).Dispose();
        await h.WaitForFlowAsync(_ => true);
        Assert.Equal(1, await h.Store.CountAsync());
    }

    [Fact]
    public void Only_requests_for_the_UIs_own_address_and_port_are_marked_as_its_traffic()
    {
        var marker = new WebUiTrafficMarker();
        Assert.False(marker.IsUi("127.0.0.1", 8081));
        marker.Serve(new IPEndPoint(IPAddress.Loopback, 8081));
        Assert.True(marker.IsUi("127.0.0.1", 8081));
        Assert.True(marker.IsUi("LOCALHOST", 8081));
        Assert.True(marker.IsUi("::ffff:127.0.0.1", 8081));
        Assert.False(marker.IsUi("127.0.0.1", 8080));
        Assert.False(marker.IsUi("[::1]", 8081));
        Assert.False(marker.IsUi("192.0.2.7", 8081));
        Assert.False(marker.IsUi("example.test", 8081));

        marker.Serve(new IPEndPoint(IPAddress.IPv6Any, 9000));
        Assert.True(marker.IsUi("[::1]", 9000));
        Assert.True(marker.IsUi("127.0.0.1", 9000));
        Assert.True(marker.IsUi("localhost", 9000));
        Assert.False(marker.IsUi("192.0.2.7", 9000));
    }

    [Fact]
    public async Task Details_show_heads_in_wire_order_and_bodies_are_served_decoded_truncated_and_whole_by_ticket()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        var payload = new string('x', 300_000);
        using (var request = new HttpRequestMessage(HttpMethod.Post, h.Origin.Url("/echo")) { Content = new StringContent(payload) })
        {
            request.Headers.TryAddWithoutValidation("x-lower-Case", "kept");
            request.Headers.TryAddWithoutValidation("X-Test", "t");
            (await client.SendAsync(request)).Dispose();
        }

        var flow = await h.WaitForFlowAsync(_ => true);
        using var details = JsonDocument.Parse(await h.Api.GetStringAsync($"/api/flows/{flow.Id}"));
        var names = details.RootElement.GetProperty("request").GetProperty("headers").EnumerateArray().Select(p => p[0].GetString()).ToList();
        Assert.True(names.IndexOf("x-lower-Case") >= 0 && names.IndexOf("x-lower-Case") < names.IndexOf("X-Test"), string.Join(",", names));

        using var preview = await h.Api.GetAsync($"/api/flows/{flow.Id}/body/request?max=1000");
        Assert.Equal("application/octet-stream", preview.Content.Headers.ContentType!.MediaType);
        Assert.Equal(1000, (await preview.Content.ReadAsByteArrayAsync()).Length);
        Assert.Equal("300000", preview.Headers.GetValues("X-Interpose-Length").Single());

        using var ticket = JsonDocument.Parse(await (await h.Api.PostAsync($"/api/flows/{flow.Id}/body/request/download", null)).Content.ReadAsStringAsync());
        var url = ticket.RootElement.GetProperty("url").GetString()!;
        using var plain = new HttpClient { BaseAddress = h.Api.BaseAddress };
        Assert.Equal(payload, await plain.GetStringAsync(url));
        using var reused = await plain.GetAsync(url);
        Assert.Equal(HttpStatusCode.NotFound, reused.StatusCode);
    }

    [Fact]
    public async Task A_body_whose_recorded_type_is_not_ascii_is_served_with_the_type_percent_encoded()
    {
        await using var h = await WebHarness.StartAsync(output);
        var headers = new Core.Http.HttpHeaders();
        headers.Add("Content-Type", "text/plain; name=\"caf\u00e9 100%\"");
        var sample = Sample(Guid.NewGuid());
        await h.Store.AppendAsync([sample with { Response = sample.Response! with { Headers = headers } }]);

        using var body = await h.Api.GetAsync($"/api/flows/{sample.Id}/body/response");

        Assert.Equal(HttpStatusCode.OK, body.StatusCode);
        Assert.Equal("saved body", await body.Content.ReadAsStringAsync());
        var type = body.Headers.GetValues("X-Interpose-Content-Type").Single();
        Assert.Equal("text/plain; name=\"caf%C3%A9 100%25\"", type);
        Assert.Equal("text/plain; name=\"caf\u00e9 100%\"", Uri.UnescapeDataString(type));
    }

    [Fact]
    public async Task Replay_sends_the_edited_request_through_the_proxy_as_a_new_flow()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        (await client.PostAsync(h.Origin.Url("/echo"), new StringContent("original"))).Dispose();
        var original = await h.WaitForFlowAsync(_ => true);

        using (var replay = await h.Api.PostAsync($"/api/flows/{original.Id}/replay", null))
        {
            Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        }

        var edit = $$"""{"method":"PUT","url":"{{h.Origin.Url("/echo?replayed=1")}}","headers":[["X-Test","edited"],["Content-Type","text/plain"]],"body":"changed body"}""";
        using (var replay = await h.Api.PostAsync($"/api/flows/{original.Id}/replay", WebHarness.Json(edit)))
        {
            using var result = JsonDocument.Parse(await replay.Content.ReadAsStringAsync());
            Assert.Equal(200, result.RootElement.GetProperty("status").GetInt32());
        }

        var edited = (HttpFlow)await h.WaitForFlowAsync(f => f is HttpFlow { Request.Method: "PUT" });
        Assert.NotEqual(original.Id, edited.Id);
        Assert.Contains("PUT /echo?replayed=1 | edited | changed body", WebHarness.Seen);
        Assert.Equal(3, await h.Store.CountAsync());
    }

    [Fact]
    public async Task A_replays_response_is_read_through_not_buffered_so_a_body_over_2_GiB_still_gives_its_status()
    {
        // Buffered (HttpCompletionOption.ResponseContentRead), a 400 MB download cost the UI's process 480 MB, and one
        // declared over int.MaxValue bytes failed before its first byte: streamed, the status comes back, and the break
        // of this body (the origin stops after 1 KiB) is told with it.
        const long HugeLength = 3L << 30; // over int.MaxValue, what an HttpClient buffers at most
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {HugeLength}\r\n\r\n"));
            await stream.WriteAsync(new byte[1024]);
            stream.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send); // mid-body: the first KiB, then the end
        });
        await using var h = await WebHarness.StartAsync(output);
        var sample = Sample(Guid.NewGuid());
        var huge = sample with { Request = sample.Request with { Host = "127.0.0.1", Port = origin.Port, Path = "/huge" } };
        await h.Store.AppendAsync([huge]);

        using var replay = await h.Api.PostAsync($"/api/flows/{huge.Id}/replay", null);

        using var result = JsonDocument.Parse(await replay.Content.ReadAsStringAsync());
        Assert.True(result.RootElement.TryGetProperty("status", out var status), result.RootElement.ToString());
        Assert.Equal(200, status.GetInt32());
        Assert.StartsWith("the response body broke off", result.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_request_whose_body_was_recorded_cut_is_replayed_only_with_a_body_from_the_edit()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        var payload = new string('p', 1_000);
        (await client.PostAsync(h.Origin.Url("/echo?cut"), new StringContent(payload))).Dispose();
        var whole = (HttpFlow)await h.WaitForFlowAsync(_ => true);
        // As `run --save-body-limit 100` records it: the first 100 bytes of 1,000.
        var cutBody = new FlowBody(Encoding.ASCII.GetBytes(payload[..100]), 1_000, whole.Request.Body.Sha256);
        var cut = whole with { Id = Guid.NewGuid(), Request = whole.Request with { Path = "/echo?cut-copy", Body = cutBody } };
        await h.Store.AppendAsync([cut]);

        using (var refused = await h.Api.PostAsync($"/api/flows/{cut.Id}/replay", null))
        {
            var text = await refused.Content.ReadAsStringAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.Conflict, $"{refused.StatusCode}: {text}");
            Assert.Contains("recorded cut (100 of 1000 bytes)", text, StringComparison.Ordinal);
        }

        using (var headersOnly = await h.Api.PostAsync($"/api/flows/{cut.Id}/replay", WebHarness.Json("""{"headers":[["X-Test","h"]]}""")))
        {
            Assert.Equal(HttpStatusCode.Conflict, headersOnly.StatusCode);
        }

        Assert.DoesNotContain(WebHarness.Seen, s => s.StartsWith("POST /echo?cut-copy", StringComparison.Ordinal));
        using (var replay = await h.Api.PostAsync($"/api/flows/{cut.Id}/replay", WebHarness.Json("""{"headers":[["X-Test","given"]],"body":"the whole body"}""")))
        {
            using var result = JsonDocument.Parse(await replay.Content.ReadAsStringAsync());
            Assert.Equal(200, result.RootElement.GetProperty("status").GetInt32());
        }

        Assert.Contains("POST /echo?cut-copy | given | the whole body", WebHarness.Seen);

        // A body whose exchange failed mid-body: all its bytes kept, no SHA-256 (not IsTruncated), not whole either.
        var ended = whole with { Id = Guid.NewGuid(), Request = whole.Request with { Path = "/echo?ended-copy", Body = new FlowBody(Encoding.ASCII.GetBytes(payload[..100]), 100, null) } };
        await h.Store.AppendAsync([ended]);
        using (var refused = await h.Api.PostAsync($"/api/flows/{ended.Id}/replay", null))
        {
            var text = await refused.Content.ReadAsStringAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.Conflict, $"{refused.StatusCode}: {text}");
            Assert.Contains("ended after 100 bytes", text, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(WebHarness.Seen, s => s.StartsWith("POST /echo?ended-copy", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_replay_from_the_UI_is_recorded_and_listed_as_a_replay_of_the_original(bool https)
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        var origin = https ? h.TlsOrigin : h.Origin;
        (await client.PostAsync(origin.Url("/echo?marked"), new StringContent("once"))).Dispose();
        var original = await h.WaitForFlowAsync(_ => true);

        using (var replay = await h.Api.PostAsync($"/api/flows/{original.Id}/replay", null))
        {
            using var result = JsonDocument.Parse(await replay.Content.ReadAsStringAsync());
            Assert.Equal(200, result.RootElement.GetProperty("status").GetInt32());
        }

        var replayed = (HttpFlow)await h.WaitForFlowAsync(f => f.Id != original.Id);
        Assert.Equal(Core.Filters.FilterReplayKind.None, original.Replay);
        Assert.Equal(Core.Filters.FilterReplayKind.Request, replayed.Replay);
        Assert.Equal(original.Id.ToString(), replayed.Tags[Interpose.Proxy.FlowReplayer.Tag]);
        Assert.Null(replayed.Request.Headers.Get(WebReplayMarker.Header)); // the marker's field stays in the proxy

        using var list = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows?filter=" + Uri.EscapeDataString("~replayq")));
        var row = Assert.Single(list.RootElement.GetProperty("flows").EnumerateArray());
        Assert.Equal(replayed.Id, row.GetProperty("id").GetGuid());
        Assert.Equal("request", row.GetProperty("replay").GetString());
    }

    [Fact]
    public async Task A_client_cannot_pass_its_request_off_as_a_UI_replay()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, h.Origin.Url("/echo?forged")) { Content = new StringContent("x") };
        request.Headers.Add(WebReplayMarker.Header, "00000000000000000000000000000000 " + Guid.NewGuid());
        (await client.SendAsync(request)).Dispose();

        var flow = (HttpFlow)await h.WaitForFlowAsync(_ => true);
        Assert.Equal(Core.Filters.FilterReplayKind.None, flow.Replay);
        Assert.False(flow.Tags.ContainsKey(Interpose.Proxy.FlowReplayer.Tag));
        Assert.Null(flow.Request.Headers.Get(WebReplayMarker.Header));
    }

    [Fact]
    public async Task Mark_comment_duplicate_delete_curl_har_and_clear_change_the_store()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        (await client.GetAsync(h.Origin.Url("/json"))).Dispose();
        var flow = await h.WaitForFlowAsync(_ => true);

        using (var response = await h.Api.PatchAsync($"/api/flows/{flow.Id}", WebHarness.Json("""{"marker":"marked","comment":"look here"}""")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var stored = await h.Store.GetAsync(flow.Id);
        Assert.Equal(("marked", "look here"), (stored!.Marker, stored.Comment));
        using (var marked = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows?filter=~marked")))
        {
            Assert.Single(marked.RootElement.GetProperty("flows").EnumerateArray());
        }

        (await h.Api.PostAsync($"/api/flows/{flow.Id}/duplicate", null)).Dispose();
        Assert.Equal(2, await h.Store.CountAsync());

        var curl = await h.Api.GetStringAsync($"/api/flows/{flow.Id}/curl");
        Assert.StartsWith("curl --globoff '" + h.Origin.Url("/json"), curl, StringComparison.Ordinal);

        using (var har = JsonDocument.Parse(await h.Api.GetStringAsync("/api/har")))
        {
            Assert.Equal(2, har.RootElement.GetProperty("log").GetProperty("entries").GetArrayLength());
        }

        using (var har = JsonDocument.Parse(await (await h.Api.PostAsync("/api/har", WebHarness.Json($$"""{"ids":["{{flow.Id}}"]}"""))).Content.ReadAsStringAsync()))
        {
            Assert.Equal(1, har.RootElement.GetProperty("log").GetProperty("entries").GetArrayLength());
        }

        (await h.Api.DeleteAsync($"/api/flows/{flow.Id}")).Dispose();
        Assert.Null(await h.Store.GetAsync(flow.Id));
        Assert.Equal(1, await h.Store.CountAsync());
        (await h.Api.PostAsync("/api/clear", null)).Dispose();
        Assert.Equal(0, await h.Store.CountAsync());
    }

    [Fact]
    public async Task A_saved_file_is_read_only()
    {
        var id = Guid.NewGuid();
        await using var h = await WebHarness.StartAsync(output, readOnly: true, seed: store => store.AppendAsync([Sample(id)]).AsTask());
        using (var list = JsonDocument.Parse(await h.Api.GetStringAsync("/api/flows")))
        {
            Assert.Single(list.RootElement.GetProperty("flows").EnumerateArray());
        }

        foreach (var (method, path) in new[] { ("DELETE", $"/api/flows/{id}"), ("POST", $"/api/flows/{id}/duplicate"), ("POST", "/api/clear") })
        {
            using var response = await h.Api.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        }

        using var replay = await h.Api.PostAsync($"/api/flows/{id}/replay", null);
        Assert.Equal(HttpStatusCode.Conflict, replay.StatusCode);
        Assert.Equal(1, await h.Store.CountAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Intercept_pauses_a_request_and_the_edited_request_reaches_the_origin(bool http2)
    {
        await using var h = await WebHarness.StartAsync(output);
        using (var set = await h.Api.PutAsync("/api/intercept", WebHarness.Json("""{"filter":"~q ~u /echo & ~m POST"}""")))
        {
            Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        }

        using var client = h.ProxyClient();
        var origin = http2 ? h.TlsOrigin : h.Origin;
        using var request = new HttpRequestMessage(HttpMethod.Post, origin.Url("/echo")) { Content = new StringContent("before") };
        if (http2)
        {
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        var sending = client.SendAsync(request);
        var paused = await h.WaitForPausedAsync();
        Assert.False(sending.IsCompleted);
        Assert.Equal(http2 ? new Version(2, 0) : new Version(1, 1), paused.Exchange.ClientVersion);

        using (var state = JsonDocument.Parse(await h.Api.GetStringAsync("/api/intercept")))
        {
            var item = Assert.Single(state.RootElement.GetProperty("paused").EnumerateArray());
            Assert.Equal("before", item.GetProperty("body").GetString());
            Assert.Equal(paused.Key, item.GetProperty("key").GetString());
        }

        var edit = $$"""{"url":"{{origin.Url("/echo?edited=" + (http2 ? "h2" : "h1"))}}","headers":[["Host","localhost:{{origin.Port}}"],["X-Test","from-ui"],["Content-Type","text/plain"]],"body":"after"}""";
        using (var resume = await h.Api.PostAsync($"/api/intercept/{paused.Key}/resume", WebHarness.Json(edit)))
        {
            Assert.Equal(HttpStatusCode.NoContent, resume.StatusCode);
        }

        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(30));
        var expected = $"POST /echo?edited={(http2 ? "h2" : "h1")} | from-ui | after";
        Assert.Equal("echo: " + expected, await response.Content.ReadAsStringAsync());
        Assert.Contains(expected, WebHarness.Seen);
    }

    [Fact]
    public async Task Edits_sent_chunked_are_applied_to_a_replay_and_to_a_resume_and_an_empty_body_is_no_edit()
    {
        await using var h = await WebHarness.StartAsync(output);
        using var client = h.ProxyClient();
        (await client.PostAsync(h.Origin.Url("/echo?chunked-edit"), new StringContent("recorded"))).Dispose();
        var original = await h.WaitForFlowAsync(_ => true);

        // .NET's PostAsJsonAsync and a streamed fetch send their JSON chunked (RFC 9112 §7.1): no Content-Length.
        static HttpRequestMessage Chunked(string path, string json)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = WebHarness.Json(json) };
            request.Headers.TransferEncodingChunked = true;
            return request;
        }

        var edit = $$"""{"method":"PUT","url":"{{h.Origin.Url("/echo?chunked-replay")}}","headers":[["X-Test","chunked"]],"body":"edited"}""";
        using (var request = Chunked($"/api/flows/{original.Id}/replay", edit))
        using (var replay = await h.Api.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        }

        Assert.Contains("PUT /echo?chunked-replay | chunked | edited", WebHarness.Seen);

        using (var request = Chunked($"/api/flows/{original.Id}/replay", ""))
        using (var replay = await h.Api.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        }

        Assert.Equal(2, WebHarness.Seen.Count(s => s == "POST /echo?chunked-edit |  | recorded"));

        h.Intercept.Filter = Core.Filters.FlowFilter.Parse("~q ~u /echo\\?chunked-resume");
        var sending = client.PostAsync(h.Origin.Url("/echo?chunked-resume"), new StringContent("before"));
        var paused = await h.WaitForPausedAsync();
        using (var request = Chunked($"/api/intercept/{paused.Key}/resume", $$"""{"headers":[["Host","localhost:{{h.Origin.Port}}"],["X-Test","resumed"],["Content-Type","text/plain"]],"body":"after"}"""))
        using (var resume = await h.Api.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.NoContent, resume.StatusCode);
        }

        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("echo: POST /echo?chunked-resume | resumed | after", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_killed_paused_request_never_reaches_the_origin()
    {
        await using var h = await WebHarness.StartAsync(output);
        h.Intercept.Filter = Core.Filters.FlowFilter.Parse("~u /echo\\?kill");
        using var client = h.ProxyClient();
        var sending = client.PostAsync(h.Origin.Url("/echo?kill=1"), new StringContent("doomed"));
        var paused = await h.WaitForPausedAsync();
        (await h.Api.PostAsync($"/api/intercept/{paused.Key}/kill", null)).Dispose();
        await Assert.ThrowsAsync<HttpRequestException>(() => sending.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.DoesNotContain(WebHarness.Seen, s => s.Contains("kill=1", StringComparison.Ordinal));
        using var again = await h.Api.PostAsync($"/api/intercept/{paused.Key}/kill", null);
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task Intercept_pauses_a_response_whose_edit_reaches_the_client()
    {
        await using var h = await WebHarness.StartAsync(output);
        h.Intercept.Filter = Core.Filters.FlowFilter.Parse("~s ~u /json");
        using var client = h.ProxyClient();
        var sending = client.GetAsync(h.Origin.Url("/json"));
        var paused = await h.WaitForPausedAsync(InterceptPhase.Response);
        using (var resume = await h.Api.PostAsync($"/api/intercept/{paused.Key}/resume", WebHarness.Json("""{"status":418,"headers":[["Content-Type","text/plain"]],"body":"teapot"}""")))
        {
            Assert.Equal(HttpStatusCode.NoContent, resume.StatusCode);
        }

        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((HttpStatusCode)418, response.StatusCode);
        Assert.Equal("teapot", await response.Content.ReadAsStringAsync());
    }

    internal static HttpFlow Sample(Guid id) => new()
    {
        Id = id,
        StartedAt = DateTimeOffset.UnixEpoch.AddDays(20000),
        ClientHttpVersion = "HTTP/1.1",
        Request = new FlowRequest
        {
            Method = "GET", Scheme = "http", Host = "example.test", Port = 80, Path = "/saved", HttpVersion = "HTTP/1.1",
            Headers = new Core.Http.HttpHeaders(),
        },
        Response = new FlowResponse { StatusCode = 200, HttpVersion = "HTTP/1.1", Headers = new Core.Http.HttpHeaders(), Body = FlowBody.FromBytes("saved body"u8.ToArray()) },
    };

    private static async Task<Stream> OpenEventsAsync(WebHarness h, string query)
    {
        var response = await h.Api.GetAsync("/api/events" + query, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var stream = await response.Content.ReadAsStreamAsync();
        var (name, _) = await ReadEventAsync(stream, comment: true);
        Assert.Equal("", name);
        return stream;
    }

    /// <summary>Reads one server-sent event (a block up to a blank line), bounded in time.</summary>
    private static async Task<(string Name, string Data)> ReadEventAsync(Stream stream, bool comment = false)
    {
        var text = new StringBuilder();
        var one = new byte[1];
        while (!text.ToString().EndsWith("\n\n", StringComparison.Ordinal))
        {
            Assert.True(await stream.ReadBoundedAsync(one) == 1, "the event stream ended");
            text.Append((char)one[0]);
        }

        var lines = Encoding.Latin1.GetString(Encoding.Latin1.GetBytes(text.ToString())).Split('\n');
        if (comment)
        {
            return ("", "");
        }

        var name = lines.First(l => l.StartsWith("event: ", StringComparison.Ordinal))["event: ".Length..];
        var data = lines.First(l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..];
        return (name, Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(data)));
    }
}
