using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Interpose.Core.Flows;
using Interpose.Core.Flows.Har;
using Interpose.Core.Http;

namespace Interpose.Core.Tests.Flows;

public sealed class HarFileTests
{
    private static readonly DateTimeOffset Start = new(2025, 3, 1, 12, 0, 0, 123, TimeSpan.Zero);

    [Fact]
    public void Export_then_import_keeps_requests_responses_headers_in_order_bodies_and_timings()
    {
        var flows = SampleFlows();

        var har = HarFile.Export(flows);
        var back = HarFile.Import(har);

        Assert.Equal(flows.Count, back.Count);
        for (var i = 0; i < flows.Count; i++)
        {
            var (a, b) = (flows[i], back[i]);
            Assert.Equal(a.StartedAt, b.StartedAt);
            Assert.Equal(a.Request.Method, b.Request.Method);
            Assert.Equal(a.Request.Url, b.Request.Url);
            Assert.Equal(a.Request.Headers, b.Request.Headers);
            Assert.Equal(a.Request.Body.Content.ToArray(), b.Request.Body.Content.ToArray());
            Assert.Equal(a.Response?.StatusCode, b.Response?.StatusCode);
            Assert.Equal(a.Response?.Headers, b.Response?.Headers);
            if (a.Timings == FlowTimings.Unknown)
            {
                // HAR requires send, wait and receive: unknown timings come back as zeros.
                continue;
            }

            Assert.Equal(a.Timings.Done, b.Timings.Done);
            Assert.Equal(a.Timings.FirstByte, b.Timings.FirstByte);
            Assert.Equal(a.Timings.TlsDone, b.Timings.TlsDone);
            Assert.Equal(a.Timings.Connected, b.Timings.Connected);
            Assert.Equal(a.Timings.DnsDone, b.Timings.DnsDone);
        }

        // The binary request body survives through the postData encoding extension.
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, back[1].Request.Body.Content.ToArray());
        // The gzip body is exported decoded and imported re-encoded: same content, headers unchanged.
        Assert.True(ContentCodingDecodes(back[0].Response!, out var text));
        Assert.Equal("{\"hello\":\"world\"}", text);
        // No response stays no response.
        Assert.Null(back[2].Response);
    }

    [Fact]
    public void Export_follows_HAR_1_2_content_size_is_decoded_binary_is_base64_ssl_is_inside_connect()
    {
        using var doc = JsonDocument.Parse(HarFile.Export(SampleFlows()));
        var log = doc.RootElement.GetProperty("log");
        Assert.Equal("1.2", log.GetProperty("version").GetString());
        Assert.Equal("Interpose", log.GetProperty("creator").GetProperty("name").GetString());
        var entries = log.GetProperty("entries");

        var gzip = entries[0];
        var content = gzip.GetProperty("response").GetProperty("content");
        Assert.Equal(17, content.GetProperty("size").GetInt64());
        Assert.Equal("{\"hello\":\"world\"}", content.GetProperty("text").GetString());
        Assert.False(content.TryGetProperty("encoding", out _));
        var timings = gzip.GetProperty("timings");
        Assert.Equal(5, timings.GetProperty("dns").GetDouble());
        Assert.Equal(25, timings.GetProperty("connect").GetDouble());
        Assert.Equal(15, timings.GetProperty("ssl").GetDouble());
        Assert.Equal("b", gzip.GetProperty("request").GetProperty("queryString")[0].GetProperty("value").GetString());
        Assert.Equal("sid", gzip.GetProperty("request").GetProperty("cookies")[0].GetProperty("name").GetString());
        Assert.Equal("93.184.216.34", gzip.GetProperty("serverIPAddress").GetString());

        var post = entries[1].GetProperty("request").GetProperty("postData");
        Assert.Equal("base64", post.GetProperty("encoding").GetString());
        Assert.Equal(Convert.ToBase64String(new byte[] { 0, 1, 2, 255 }), post.GetProperty("text").GetString());
        Assert.Equal(-1, entries[1].GetProperty("timings").GetProperty("connect").GetDouble());

        Assert.Equal(0, entries[2].GetProperty("response").GetProperty("status").GetInt32());
    }

    [Theory]
    [InlineData("HTTP/2.0", "HTTP/2.0", false, "http/2.0", "http/2.0")]
    [InlineData("HTTP/2.0", "HTTP/1.1", false, "http/2.0", "HTTP/1.1")]
    [InlineData("HTTP/1.1", "HTTP/2.0", false, "HTTP/1.1", "http/2.0")]
    [InlineData("HTTP/2.0", null, true, "http/2.0", "http/2.0")]
    public void HttpVersion_is_each_sides_real_protocol_written_as_Chromium_does(string client, string? server, bool synthetic, string request, string response)
    {
        // As recorded: the heads are normalized to HTTP/1.1 inside the proxy; each side's protocol is on the flow.
        var flow = Flow("GET", "/v", response: Response(200, "x"u8.ToArray(), "Content-Type: text/plain")) with
        {
            ClientHttpVersion = client,
            ServerHttpVersion = server,
            IsSynthetic = synthetic,
        };

        using var doc = JsonDocument.Parse(HarFile.Export([flow]));
        var entry = doc.RootElement.GetProperty("log").GetProperty("entries")[0];
        Assert.Equal(request, entry.GetProperty("request").GetProperty("httpVersion").GetString());
        Assert.Equal(response, entry.GetProperty("response").GetProperty("httpVersion").GetString());
        Assert.Equal(client, HarFile.Import(HarFile.Export([flow]))[0].ClientHttpVersion);
    }

    [Fact]
    public void A_zstd_body_is_exported_decoded_with_its_decoded_size()
    {
        var json = "{\"hello\":\"zstd\"}"u8.ToArray();
        var flow = Flow("GET", "/z", response: Response(200, ContentCoding.Encode(json, "zstd"), "Content-Encoding: zstd", "Content-Type: application/json"));

        using var doc = JsonDocument.Parse(HarFile.Export([flow]));
        var content = doc.RootElement.GetProperty("log").GetProperty("entries")[0].GetProperty("response").GetProperty("content");
        Assert.Equal("{\"hello\":\"zstd\"}", content.GetProperty("text").GetString());
        Assert.Equal(json.Length, content.GetProperty("size").GetInt32());
        Assert.False(content.TryGetProperty("_interposeEncoded", out _));
    }

    [Fact]
    public void A_zstd_body_that_does_not_decode_stays_encoded_and_is_marked_so_import_keeps_its_bytes()
    {
        var zstd = new byte[] { 0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3 };
        var flow = Flow("GET", "/z", response: Response(200, zstd, "Content-Encoding: zstd", "Content-Type: text/plain"));

        var har = HarFile.Export([flow]);
        using var doc = JsonDocument.Parse(har);
        var content = doc.RootElement.GetProperty("log").GetProperty("entries")[0].GetProperty("response").GetProperty("content");
        Assert.True(content.GetProperty("_interposeEncoded").GetBoolean());
        Assert.Equal("base64", content.GetProperty("encoding").GetString());

        Assert.Equal(zstd, HarFile.Import(har)[0].Response!.Body.Content.ToArray());
    }

    [Fact]
    public void Past_the_exports_cap_on_decoded_bytes_bodies_are_written_as_recorded_and_import_keeps_their_bytes()
    {
        // Small gzip bombs (61 KB that inflate to 60 MiB) must not make an export decode without end: past the cap a
        // body is written encoded, as one whose coding cannot be undone.
        var text = new string('x', 1000);
        var gzip = ContentCoding.Encode(Encoding.UTF8.GetBytes(text), "gzip");
        var flows = Enumerable.Range(0, 3).Select(i => Flow("GET", "/" + i, response: Response(200, gzip, "Content-Encoding: gzip"))).ToList();

        var har = HarFile.Export(flows, maxDecodedBytes: 2500);

        using (var doc = JsonDocument.Parse(har))
        {
            var contents = doc.RootElement.GetProperty("log").GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("response").GetProperty("content")).ToList();
            Assert.Equal([text, text], contents.Take(2).Select(c => c.GetProperty("text").GetString()));
            Assert.True(contents[2].GetProperty("_interposeEncoded").GetBoolean());
            Assert.Equal(Convert.ToBase64String(gzip), contents[2].GetProperty("text").GetString());
        }

        Assert.All(HarFile.Import(har), f => Assert.Equal(text, Encoding.UTF8.GetString(ContentCoding.TryDecode(f.Response!.Body.Content, "gzip", out var decoded) ? decoded.Span : [])));
    }

    [Fact]
    public async Task ExportAsync_writes_each_entry_before_it_asks_for_the_next_flow_and_the_same_document_as_Export()
    {
        var flows = SampleFlows();
        using var output = new AsyncOnlyStream();
        var seenBefore = new List<string>();

        async IAsyncEnumerable<HttpFlow> Yield()
        {
            foreach (var flow in flows)
            {
                await Task.Yield();
                seenBefore.Add(Encoding.UTF8.GetString(output.ToArray()));
                yield return flow;
            }
        }

        Assert.Equal(flows.Count, await HarFile.ExportAsync(Yield(), output));

        // When the second flow is asked for, the first entry is already in the stream.
        Assert.Contains(flows[0].Request.Url, seenBefore[1], StringComparison.Ordinal);
        Assert.DoesNotContain(flows[1].Request.Url, seenBefore[1], StringComparison.Ordinal);
        Assert.Equal(HarFile.Export(flows), output.ToArray());
    }

    [Fact]
    public void Bodies_cut_at_the_recording_cap_are_imported_cut_with_their_whole_length_and_hash()
    {
        // Export writes the whole length (bodySize, content.size) and a comment; an import that dropped them made a cut
        // body whole, and replay then sent "Content-Length: 100" with 10 bytes.
        var gzip = ContentCoding.Encode(Encoding.UTF8.GetBytes(new string('x', 5000)), "gzip");
        var requestHash = new string('a', 64);
        var flow = Flow("POST", "/up", headers: ["Host: example.com", "Content-Length: 100"], response: Response(200, [], "Content-Encoding: gzip")) with
        {
            Request = Flow("POST", "/up", headers: ["Host: example.com", "Content-Length: 100"]).Request with { Body = new FlowBody("0123456789"u8.ToArray(), 100, requestHash) },
        };
        flow = flow with { Response = flow.Response! with { Body = new FlowBody(gzip.AsMemory(0, 10), gzip.Length, null) } };

        var back = HarFile.Import(HarFile.Export([flow]))[0];

        Assert.True(back.Request.Body.IsTruncated);
        Assert.Equal("0123456789"u8.ToArray(), back.Request.Body.Content.ToArray());
        Assert.Equal(100, back.Request.Body.Length);
        Assert.Equal(requestHash, back.Request.Body.Sha256);
        Assert.Contains("recorded cut (10 of 100 bytes)", Assert.Throws<ArgumentException>(() => ReplayRequest.Serialize(back.Request)).Message, StringComparison.Ordinal);
        var response = back.Response!.Body;
        Assert.True(response.IsTruncated);
        Assert.Equal(gzip.AsSpan(0, 10).ToArray(), response.Content.ToArray());
        Assert.Equal(gzip.Length, response.Length);
        Assert.Null(response.Sha256);
    }

    [Theory]
    [InlineData("""{"mimeType":"image/png","size":2048}""", 0, 2048)] // a browser's HAR saved without content
    [InlineData("""{"mimeType":"text/plain","size":10,"text":"abc"}""", 3, 10)]
    [InlineData("""{"mimeType":"text/plain","size":3,"text":"abc","comment":"body truncated by the recording cap: 3 of 9 bytes, sha256 unknown"}""", 3, 4)]
    public void A_response_whose_size_or_comment_says_it_is_longer_than_its_text_is_imported_cut(string content, int kept, long length)
    {
        var json = """{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"response":{"status":200,"content":""" + content + "}}]}}";

        var body = HarFile.Import(Encoding.UTF8.GetBytes(json))[0].Response!.Body;

        Assert.True(body.IsTruncated);
        Assert.Equal(kept, body.Content.Length);
        Assert.Equal(length, body.Length);
    }

    [Theory]
    [InlineData("text/plain; charset=utf-16", "hello é", 14)]
    [InlineData("text/plain;Charset=\"UTF-16BE\"", "hello é", 14)]
    [InlineData("application/json; charset=utf-32", "[1]", 12)]
    public void A_text_in_a_UTF_16_or_UTF_32_charset_is_imported_whole_in_its_charset_not_cut(string mimeType, string text, int size)
    {
        // A browser writes the decoded text and the body's size in bytes: import compared the size with the text's UTF-8
        // form, about half as long for UTF-16, and imported every such body as cut (replay then refused it).
        var content = JsonSerializer.Serialize(new { mimeType, size, text });
        var json = """{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"response":{"status":200,"content":""" + content + "}}]}}";

        var body = HarFile.Import(Encoding.UTF8.GetBytes(json))[0].Response!.Body;

        Assert.False(body.IsTruncated);
        Assert.Equal(size, body.Length);
        Assert.Equal(text, Charset(mimeType).GetString(body.Content.Span));
    }

    [Fact]
    public void A_UTF_16_body_is_exported_as_its_text_and_imported_back_byte_for_byte()
    {
        // Its ASCII text is valid UTF-8 as bytes too ("h\0i\0"): export must write the text, "hi", that import encodes
        // in UTF-16 again, and bytes that are no UTF-16 (an odd count) in base64.
        byte[] odd = [0x68, 0x00, 0x69];
        var flows = new[] { Encoding.Unicode.GetBytes("hi é"), odd }.Select(bytes => Flow(
            "POST", "/", bytes, Response(200, bytes, "Content-Type: text/plain; charset=utf-16"), ["Host: example.com", "Content-Type: text/plain; charset=utf-16"])).ToList();

        var har = HarFile.Export(flows);
        var back = HarFile.Import(har);

        using var document = JsonDocument.Parse(har);
        var entries = document.RootElement.GetProperty("log").GetProperty("entries");
        Assert.Equal("hi é", entries[0].GetProperty("response").GetProperty("content").GetProperty("text").GetString());
        Assert.Equal("hi é", entries[0].GetProperty("request").GetProperty("postData").GetProperty("text").GetString());
        Assert.Equal("base64", entries[1].GetProperty("response").GetProperty("content").GetProperty("encoding").GetString());
        for (var i = 0; i < flows.Count; i++)
        {
            Assert.Equal(flows[i].Response!.Body.Content.ToArray(), back[i].Response!.Body.Content.ToArray());
            Assert.Equal(flows[i].Request.Body.Content.ToArray(), back[i].Request.Body.Content.ToArray());
            Assert.False(back[i].Response!.Body.IsTruncated);
        }
    }

    private static Encoding Charset(string mimeType) => mimeType.Contains("UTF-16BE", StringComparison.Ordinal) ? Encoding.BigEndianUnicode
        : mimeType.Contains("utf-32", StringComparison.Ordinal) ? Encoding.UTF32
        : Encoding.Unicode;

    [Fact]
    public void A_Chromium_DevTools_HAR_imports_and_its_underscore_fields_and_pseudo_headers_are_ignored()
    {
        var flows = HarFile.Import(Encoding.UTF8.GetBytes(ChromiumHar));

        Assert.Equal(2, flows.Count);
        var get = flows[0];
        Assert.Equal("GET", get.Request.Method);
        Assert.Equal("https://example.com/api/items?page=2", get.Request.Url);
        Assert.Equal("/api/items?page=2", get.Request.Path);
        Assert.Equal("HTTP/2.0", get.Request.HttpVersion);
        Assert.DoesNotContain(get.Request.Headers, h => h.Name.StartsWith(':'));
        Assert.Equal("application/json", get.Request.Headers.Get("accept"));
        Assert.Equal(200, get.Response!.StatusCode);
        Assert.Equal("[1,2,3]", Encoding.UTF8.GetString(get.Response.Body.Content.Span));
        Assert.Equal("93.184.216.34", get.Server!.Host);
        Assert.Equal(new DateTimeOffset(2025, 1, 2, 3, 4, 5, 678, TimeSpan.Zero), get.StartedAt);
        // blocked 1.5, then connect 30 which includes ssl 20 (HAR 1.2).
        Assert.Equal(11.5, get.Timings.Connected);
        Assert.Equal(31.5, get.Timings.TlsDone);
        Assert.Equal(31.5 + 0.2 + 15.1 + 5.5, get.Timings.Done!.Value, precision: 9);

        var post = flows[1];
        Assert.Equal("a=1&b=2", Encoding.UTF8.GetString(post.Request.Body.Content.Span));
        Assert.Null(post.Response);

        // Chromium's _error on the failed request: the flow's error, its phase inferred from the net error's name.
        Assert.Null(get.Error);
        Assert.Equal(new FlowError("connect", "net::ERR_CONNECTION_REFUSED", true), post.Error);
    }

    [Fact]
    public void A_flows_error_is_exported_as_Chromiums_error_field_and_imported_back_with_its_phase()
    {
        var sample = SampleFlows()[0];
        var refused = sample with { Response = null, Error = new FlowError("connect", "connection refused", true) };
        var reset = sample with { Error = new FlowError("response", "the origin reset the connection mid-body", false) };

        var har = HarFile.Export([refused, reset, sample]);
        using (var doc = JsonDocument.Parse(har))
        {
            var entries = doc.RootElement.GetProperty("log").GetProperty("entries");
            Assert.Equal("connection refused", entries[0].GetProperty("response").GetProperty("_error").GetString());
            Assert.Equal(0, entries[0].GetProperty("response").GetProperty("status").GetInt32());
            Assert.Equal("response", entries[1].GetProperty("response").GetProperty("_interposeErrorPhase").GetString());
            Assert.False(entries[2].GetProperty("response").TryGetProperty("_error", out _));
        }

        var back = HarFile.Import(har);
        Assert.Equal(refused.Error, back[0].Error);
        Assert.Null(back[0].Response);
        Assert.Equal(reset.Error, back[1].Error);
        Assert.Equal(sample.Response!.StatusCode, back[1].Response!.StatusCode);
        Assert.Null(back[2].Error);
    }

    [Theory]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"url":"http://a/"},"response":{"status":200}}]}}""", "HAR entry 0: request.method: missing")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"}},{"startedDateTime":"yesterday","request":{"method":"GET","url":"http://a/"}}]}}""", "HAR entry 1: startedDateTime: not an ISO 8601 date: 'yesterday'")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"ftp://a/"}}]}}""", "HAR entry 0: request.url: not an absolute http or https URL: 'ftp://a/'")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/","headers":[{"name":"Bad Name","value":"x"}]}}]}}""", "HAR entry 0: request.headers[0]: 'Bad Name' is not a valid header field")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/","postData":{"mimeType":"x","text":"!!","encoding":"base64"}}}]}}""", "HAR entry 0: request.postData.text: encoding is base64")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET http://127.0.0.1:1/smuggled HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Injected: yes\r\n\r\nGET","url":"http://a/"}}]}}""", "HAR entry 0: request.method: not an RFC 9110 token: 'GET http://127.0.0.1:1/smuggled HTTP/1.1\\x0d\\x0aHost")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GE(T","url":"http://a/"}}]}}""", "HAR entry 0: request.method: not an RFC 9110 token: 'GE(T'")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/x HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /y"}}]}}""", "HAR entry 0: request.url: the path or query holds a control character or a space: 'http://a/x HTTP/1.1\\x0d\\x0aX-Injected")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/?q=a b"}}]}}""", "HAR entry 0: request.url: the path or query holds a control character or a space")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a\tb:81/"}}]}}""", "HAR entry 0: request.url: the host holds a control character or a space: 'http://a\\x09b:81/'")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a\u007f/"}}]}}""", "HAR entry 0: request.url: the host holds a control character")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"_webSocketMessages":[{"type":"send","time":0,"opcode":1,"data":"x"},null]}]}}""", "HAR entry 0: _webSocketMessages[1]: null")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"POST","url":"http://a/","postData":{"mimeType":"x","params":[null]}}}]}}""", "HAR entry 0: request.postData.params[0]: null")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"timings":{"send":1e308,"wait":1e308,"receive":1e308}}]}}""", "HAR entry 0: timings.send: not a duration of at most a year in milliseconds: 1E+308")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"timings":{"dns":-1,"send":0,"wait":1,"receive":"1e308"}}]}}""", "HAR entry 0: timings.receive: not a duration")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"_webSocketMessages":[{"type":"send","time":1e308,"opcode":1,"data":"x"}]}]}}""", "HAR entry 0: _webSocketMessages[0].time: not within a year")]
    // A message's error names it by its index, as every other field in a list is named.
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"_webSocketMessages":[{"type":"send","time":0,"opcode":1,"data":"x"},{"type":"sent","time":0,"opcode":1,"data":"x"}]}]}}""", "HAR entry 0: _webSocketMessages[1].type: not send or receive: 'sent'")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"_webSocketMessages":[{"type":"send","time":0,"opcode":1,"data":"x"},{"type":"receive","time":0,"opcode":3,"data":"x"}]}]}}""", "HAR entry 0: _webSocketMessages[1].opcode: not a WebSocket opcode: 3")]
    [InlineData("""{"log":{"version":"1.2","entries":[{"startedDateTime":"2025-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"_webSocketMessages":[{"type":"send","time":0,"opcode":1,"data":"x"},{"type":"receive","time":0,"opcode":2,"data":"!!"}]}]}}""", "HAR entry 0: _webSocketMessages[1].data: not base64")]
    [InlineData("""{"log":{"version":"1.2"}}""", "HAR: log.entries: missing")]
    [InlineData("""{"log":{"entries":[{"time":"fast"}]}}""", "$.log.entries[0].time")]
    [InlineData("""not json""", "not a valid HAR document")]
    public void An_invalid_HAR_names_the_entry_and_the_field(string json, string expected)
    {
        var ex = Assert.Throws<HarFormatException>(() => HarFile.Import(Encoding.UTF8.GetBytes(json)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [HarValidatorFact]
    public async Task An_exported_HAR_passes_the_har_validator_npm_package()
    {
        var file = Path.Combine(HarValidatorFactAttribute.Folder, "export-" + Guid.NewGuid().ToString("N") + ".har");
        // With the error fields (Chromium's _error, Interpose's extensions) on a response and on a status-0 one.
        var sample = SampleFlows()[0];
        List<HttpFlow> flows =
        [
            .. SampleFlows(),
            sample with { Response = null, Error = new FlowError("connect", "connection refused", true) },
            sample with { Error = new FlowError("response", "reset mid-body", true) },
        ];
        await File.WriteAllBytesAsync(file, HarFile.Export(flows));
        try
        {
            var (code, output) = HarValidatorFactAttribute.Validate(file);
            Assert.True(code == 0, output);
            Assert.Contains("valid", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void WebSocket_messages_are_exported_as_Chromiums_webSocketMessages_and_imported_back()
    {
        var flow = WebSocketFlow();
        var har = HarFile.Export([flow]);

        using (var doc = JsonDocument.Parse(har))
        {
            var messages = doc.RootElement.GetProperty("log").GetProperty("entries")[0].GetProperty("_webSocketMessages");
            Assert.Equal(3, messages.GetArrayLength());
            Assert.Equal("send", messages[0].GetProperty("type").GetString());
            Assert.Equal(1, messages[0].GetProperty("opcode").GetInt32());
            Assert.Equal("hello", messages[0].GetProperty("data").GetString());
            Assert.Equal("receive", messages[1].GetProperty("type").GetString());
            Assert.Equal(Convert.ToBase64String([1, 2, 3]), messages[1].GetProperty("data").GetString());

            // Seconds since the epoch: the flow's start + the 101's arrival (2 ms) + the message's offset (10 ms).
            Assert.Equal((Start.ToUnixTimeMilliseconds() + 12) / 1000.0, messages[0].GetProperty("time").GetDouble(), precision: 6);
        }

        var back = Assert.IsType<FlowWebSocket>(Assert.Single(HarFile.Import(har)).WebSocket);
        Assert.Equal(
            flow.WebSocket!.Messages.Select(m => (m.FromClient, m.Opcode, Convert.ToHexString(m.Content.Span), Math.Round(m.OffsetMs, 3))),
            back.Messages.Select(m => (m.FromClient, m.Opcode, Convert.ToHexString(m.Content.Span), Math.Round(m.OffsetMs, 3))));
    }

    [Fact]
    public void ServerIPAddress_is_written_only_when_the_server_is_an_IP_address()
    {
        var flows = SampleFlows();
        var failed = flows[2] with { Server = new FlowEndpoint("localhost", 8080) };

        using var doc = JsonDocument.Parse(HarFile.Export([flows[0], failed]));
        var entries = doc.RootElement.GetProperty("log").GetProperty("entries");

        Assert.Equal("93.184.216.34", entries[0].GetProperty("serverIPAddress").GetString());
        Assert.False(entries[1].TryGetProperty("serverIPAddress", out _));
    }

    [Fact]
    public void Filters_run_over_recorded_flows()
    {
        var flows = SampleFlows();

        string[] Ids(string expression)
        {
            var filter = Interpose.Core.Filters.FlowFilter.Parse(expression);
            return [.. flows.Where(f => filter.Matches(f.AsFilterable())).Select(f => f.Request.Method + " " + f.Request.Path)];
        }

        Assert.Equal(["GET /api?a=b"], Ids("~m GET & ~c 200"));
        Assert.Equal(["POST /upload"], Ids("~bq \\x00\\x01|~h X-Upload"));
        Assert.Equal(["GET /api?a=b"], Ids("~bs world")); // matched in the gzip-decoded body
        Assert.Equal(["DELETE /gone"], Ids("~e"));
        Assert.Equal(["DELETE /gone"], Ids("~q"));
        Assert.Equal(["GET /api?a=b", "POST /upload", "GET /ws"], Ids("~d example\\.com & ~s"));
        Assert.Equal(["GET /ws"], Ids("~websocket & ~bq hello & !~bs hello"));
        Assert.Equal(["GET /api?a=b"], Ids("~dst 93\\.184"));
    }

    private static bool ContentCodingDecodes(FlowResponse response, out string text)
    {
        using var gzip = new GZipStream(new MemoryStream(response.Body.Content.ToArray()), CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        text = reader.ReadToEnd();
        return response.Headers.Get("Content-Encoding") == "gzip";
    }

    private static List<HttpFlow> SampleFlows()
    {
        var json = "{\"hello\":\"world\"}"u8.ToArray();
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(json);
        }

        var get = Flow("GET", "/api?a=b", response: Response(200, compressed.ToArray(), "Content-Type: application/json", "Content-Encoding: gzip", "Set-Cookie: sid=1; Path=/; HttpOnly"),
            headers: ["Host: example.com", "Cookie: sid=1", "accept: */*"]) with
        {
            Server = new FlowEndpoint("93.184.216.34", 443),
            ServerConnectionId = "7",
            Timings = new FlowTimings(5, 15, 30, 31, 40.5, 42.25),
        };
        var post = Flow("POST", "/upload", body: [0, 1, 2, 255], headers: ["Host: example.com", "X-Upload: 1", "Content-Type: application/octet-stream"],
            response: Response(201, "created"u8.ToArray(), "Content-Type: text/plain")) with
        {
            Timings = new FlowTimings(null, null, null, 1, 2, 3),
        };
        var failed = Flow("DELETE", "/gone", headers: ["Host: other.test"]) with
        {
            Request = Flow("DELETE", "/gone", headers: ["Host: other.test"]).Request with { Host = "other.test" },
            Error = new FlowError("connect", "connection refused", IsTransient: true),
        };
        return [get, post, failed, WebSocketFlow()];
    }

    private static HttpFlow WebSocketFlow() => Flow("GET", "/ws", headers: ["Host: example.com", "Upgrade: websocket", "Connection: Upgrade"]) with
    {
        Response = Response(101, [], "Upgrade: websocket", "Connection: Upgrade") with { Reason = "Switching Protocols" },
        Timings = new FlowTimings(null, null, null, 1, 2, 40),
        WebSocket = new FlowWebSocket
        {
            Messages =
            [
                new FlowWebSocketMessage(FromClient: true, WebSocketOpcode.Text, 10, "hello"u8.ToArray(), 5),
                new FlowWebSocketMessage(FromClient: false, WebSocketOpcode.Binary, 20.5, new byte[] { 1, 2, 3 }, 3),
                new FlowWebSocketMessage(FromClient: true, WebSocketOpcode.Close, 30, new byte[] { 0x03, 0xE8 }, 2),
            ],
            CloseCode = 1000,
            ClosedByClient = true,
        },
    };

    /// <summary>A memory stream that, like an ASP.NET Core response body, refuses synchronous writes.</summary>
    private sealed class AsyncOnlyStream : MemoryStream
    {
        private bool _inAsync;

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (!_inAsync)
            {
                throw new InvalidOperationException("synchronous write");
            }

            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);

        public override void Flush() => throw new InvalidOperationException("synchronous flush");

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _inAsync = true;
            try
            {
                base.Write(buffer.ToArray(), 0, buffer.Length);
            }
            finally
            {
                _inAsync = false;
            }

            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    private static HttpFlow Flow(string method, string path, byte[]? body = null, FlowResponse? response = null, string[]? headers = null) => new()
    {
        Id = Guid.CreateVersion7(Start),
        StartedAt = Start,
        ClientHttpVersion = "HTTP/1.1",
        Request = new FlowRequest
        {
            Method = method,
            Scheme = "https",
            Host = "example.com",
            Port = 443,
            Path = path,
            HttpVersion = "HTTP/1.1",
            Headers = Headers(headers ?? ["Host: example.com"]),
            Body = FlowBody.FromBytes(body ?? []),
        },
        Response = response,
    };

    private static FlowResponse Response(int status, byte[] body, params string[] headers) => new()
    {
        StatusCode = status,
        Reason = status == 200 ? "OK" : "Created",
        HttpVersion = "HTTP/1.1",
        Headers = Headers(headers),
        Body = FlowBody.FromBytes(body),
    };

    private static HttpHeaders Headers(string[] lines)
    {
        var headers = new HttpHeaders();
        foreach (var line in lines)
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers.Add(line[..colon], line[(colon + 1)..].Trim());
        }

        return headers;
    }

    /// <summary>The shape Chromium's DevTools writes ("Save all as HAR"), trimmed by hand to two entries.</summary>
    private const string ChromiumHar = """
    {
      "log": {
        "version": "1.2",
        "creator": { "name": "WebInspector", "version": "537.36" },
        "pages": [ { "startedDateTime": "2025-01-02T03:04:05.600Z", "id": "page_1", "title": "https://example.com/", "pageTimings": { "onContentLoad": 120.5, "onLoad": 300.1 } } ],
        "entries": [
          {
            "_initiator": { "type": "script", "stack": { "callFrames": [ { "functionName": "load", "scriptId": "12", "url": "https://example.com/app.js", "lineNumber": 3, "columnNumber": 10 } ] } },
            "_priority": "High",
            "_resourceType": "fetch",
            "cache": {},
            "connection": "443",
            "pageref": "page_1",
            "request": {
              "method": "GET",
              "url": "https://example.com/api/items?page=2",
              "httpVersion": "http/2.0",
              "headers": [
                { "name": ":authority", "value": "example.com" },
                { "name": ":method", "value": "GET" },
                { "name": ":path", "value": "/api/items?page=2" },
                { "name": ":scheme", "value": "https" },
                { "name": "accept", "value": "application/json" }
              ],
              "queryString": [ { "name": "page", "value": "2" } ],
              "cookies": [],
              "headersSize": -1,
              "bodySize": 0
            },
            "response": {
              "status": 200,
              "statusText": "",
              "httpVersion": "http/2.0",
              "headers": [ { "name": "content-type", "value": "application/json" } ],
              "cookies": [],
              "content": { "size": 7, "mimeType": "application/json", "text": "[1,2,3]" },
              "redirectURL": "",
              "headersSize": -1,
              "bodySize": -1,
              "_transferSize": 120,
              "_error": null,
              "_fetchedViaServiceWorker": false
            },
            "serverIPAddress": "[93.184.216.34]",
            "startedDateTime": "2025-01-02T03:04:05.678Z",
            "time": 52.3,
            "timings": { "blocked": 1.5, "dns": -1, "ssl": 20, "connect": 30, "send": 0.2, "wait": 15.1, "receive": 5.5, "_blocked_queueing": 0.9, "_workerStart": -1 }
          },
          {
            "_resourceType": "xhr",
            "cache": {},
            "request": {
              "method": "POST",
              "url": "https://example.com/form",
              "httpVersion": "http/2.0",
              "headers": [ { "name": "content-type", "value": "application/x-www-form-urlencoded" } ],
              "queryString": [],
              "cookies": [],
              "headersSize": -1,
              "bodySize": 7,
              "postData": { "mimeType": "application/x-www-form-urlencoded", "text": "a=1&b=2", "params": [ { "name": "a", "value": "1" }, { "name": "b", "value": "2" } ] }
            },
            "response": {
              "status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
              "content": { "size": 0, "mimeType": "x-unknown" },
              "redirectURL": "", "headersSize": -1, "bodySize": -1, "_transferSize": 0, "_error": "net::ERR_CONNECTION_REFUSED"
            },
            "serverIPAddress": "",
            "startedDateTime": "2025-01-02T03:04:06.000Z",
            "time": 3.1,
            "timings": { "blocked": 3.1, "dns": -1, "ssl": -1, "connect": -1, "send": 0, "wait": 0, "receive": 0 }
          }
        ]
      }
    }
    """;
}
