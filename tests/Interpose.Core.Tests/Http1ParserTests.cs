using System.Buffers;
using System.Net;
using Interpose.Core.Http;
using Interpose.Core.Tests.Corpus;

namespace Interpose.Core.Tests;

public class Http1ParserTests
{
    public static TheoryData<int> InvalidRequestIndexes => Indexes(HttpCorpus.InvalidRequests.Count);

    public static TheoryData<int> InvalidResponseIndexes => Indexes(HttpCorpus.InvalidResponses.Count);

    public static TheoryData<int> ValidRequestIndexes => Indexes(HttpCorpus.ValidRequests.Count);

    public static TheoryData<int> ValidResponseIndexes => Indexes(HttpCorpus.ValidResponses.Count);

    public static TheoryData<string> IncompleteRequests => [.. HttpCorpus.IncompleteRequests];

    public static TheoryData<string> IncompleteResponses => [.. HttpCorpus.IncompleteResponses];

    [Theory]
    [MemberData(nameof(InvalidRequestIndexes))]
    public void Invalid_request_is_rejected_with_its_reason(int index)
    {
        (string raw, RejectionReason reason) = HttpCorpus.InvalidRequests[index];
        var ex = Assert.Throws<HttpProtocolException>(() =>
        {
            var buffer = new ReadOnlySequence<byte>(HttpCorpus.Bytes(raw));
            Assert.True(Http1Parser.TryParseRequestHead(buffer, Http1Limits.Default, out HttpRequestHead? head, out _));
            MessageFraming.ForRequest(head);
        });
        Assert.Equal(reason, ex.Reason);
        Assert.Equal(RejectionStatus.ToStatusCode(reason), ex.StatusCode);
        Assert.False(ex.InResponse);
        Assert.Contains(reason.ToString(), ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(InvalidRequestIndexes))]
    public void Invalid_request_is_rejected_identically_when_fed_in_segments(int index)
    {
        (string raw, RejectionReason reason) = HttpCorpus.InvalidRequests[index];
        byte[] bytes = HttpCorpus.Bytes(raw);

        // Byte by byte re-parses from the start each time (the parser is stateless), so the 40 KB entries go in larger steps.
        IEnumerable<byte[]> chunks = bytes.Length <= 4096 ? Http1MessageDriver.OneByteAtATime(bytes) : SplitEvery(bytes, 1000);
        var ex = Assert.Throws<HttpProtocolException>(() => Http1MessageDriver.ParseRequest(chunks));
        Assert.Equal(reason, ex.Reason);
    }

    [Theory]
    [MemberData(nameof(InvalidRequestIndexes))]
    public void Invalid_request_is_rejected_identically_when_the_scan_resumes(int index)
    {
        (string raw, RejectionReason reason) = HttpCorpus.InvalidRequests[index];
        byte[] bytes = HttpCorpus.Bytes(raw);
        IEnumerable<byte[]> chunks = bytes.Length <= 4096 ? Http1MessageDriver.OneByteAtATime(bytes) : SplitEvery(bytes, 1000);
        var ex = Assert.Throws<HttpProtocolException>(() => Http1MessageDriver.ParseRequest(chunks, resumeScan: true));
        Assert.Equal(reason, ex.Reason);
    }

    [Fact]
    public void Resumed_scan_does_not_reread_what_it_has_examined()
    {
        byte[] partial = HttpCorpus.Bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + new string('s', 1000));
        Http1HeadScan scan = default;
        for (int n = 1; n <= partial.Length; n++)
        {
            var buffer = new ReadOnlySequence<byte>(partial, 0, n);
            Assert.False(Http1Parser.TryParseRequestHead(buffer, Http1Limits.Default, ref scan, out _, out _));

            // Everything received has been examined once; the next attempt starts after it.
            Assert.Equal(n, scan.SearchFrom);
        }

        Assert.Equal(1, scan.FieldCount);
        byte[] complete = [.. partial, .. "\r\n\r\n"u8];
        Assert.True(Http1Parser.TryParseRequestHead(new ReadOnlySequence<byte>(complete), Http1Limits.Default, ref scan, out HttpRequestHead? head, out _));
        Assert.Equal(1000, head.Headers.Get("X-Slow")!.Length);
        Assert.Equal(0, scan.SearchFrom);
    }

    [Theory]
    [MemberData(nameof(InvalidResponseIndexes))]
    public void Invalid_response_is_rejected_with_its_reason_and_502(int index)
    {
        (string raw, RejectionReason reason) = HttpCorpus.InvalidResponses[index];
        var ex = Assert.Throws<HttpProtocolException>(() =>
        {
            var buffer = new ReadOnlySequence<byte>(HttpCorpus.Bytes(raw));
            Assert.True(Http1Parser.TryParseResponseHead(buffer, Http1Limits.Default, out HttpResponseHead? head, out _));
            MessageFraming.ForResponse(head, "GET");
        });
        Assert.Equal(reason, ex.Reason);
        Assert.True(ex.InResponse);
        Assert.Equal(502, ex.StatusCode);
    }

    [Theory]
    [MemberData(nameof(IncompleteRequests))]
    public void Incomplete_request_needs_more_and_consumes_nothing(string raw)
    {
        byte[] bytes = HttpCorpus.Bytes(raw);
        foreach (ReadOnlySequence<byte> buffer in new[] { new ReadOnlySequence<byte>(bytes), SegmentedSequence.Chunked(bytes, 1) })
        {
            Assert.False(Http1Parser.TryParseRequestHead(buffer, Http1Limits.Default, out HttpRequestHead? head, out SequencePosition consumed));
            Assert.Null(head);
            Assert.Equal(0, buffer.Slice(buffer.Start, consumed).Length);
        }
    }

    [Theory]
    [MemberData(nameof(IncompleteResponses))]
    public void Incomplete_response_needs_more_and_consumes_nothing(string raw)
    {
        var buffer = new ReadOnlySequence<byte>(HttpCorpus.Bytes(raw));
        Assert.False(Http1Parser.TryParseResponseHead(buffer, Http1Limits.Default, out HttpResponseHead? head, out SequencePosition consumed));
        Assert.Null(head);
        Assert.Equal(buffer.Start, consumed);
    }

    [Theory]
    [MemberData(nameof(ValidRequestIndexes))]
    public void Valid_request_parses_and_round_trips_byte_exact(int index)
    {
        (_, string raw, string body) = HttpCorpus.ValidRequests[index];
        Http1MessageDriver.Result result = Http1MessageDriver.ParseRequest([HttpCorpus.Bytes(raw)]);
        Assert.Equal(body, result.Body);
        Assert.Equal(0, result.Leftover);

        // Written head == received head minus skipped leading empty lines.
        string expectedHead = raw.TrimStart('\r', '\n');
        expectedHead = expectedHead[..(expectedHead.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)];
        Assert.Equal(NormalizeOws(expectedHead), result.Head);
    }

    [Theory]
    [MemberData(nameof(ValidResponseIndexes))]
    public void Valid_response_parses(int index)
    {
        (_, string raw, string body) = HttpCorpus.ValidResponses[index];
        Http1MessageDriver.Result result = Http1MessageDriver.ParseResponse([HttpCorpus.Bytes(raw)]);
        Assert.Equal(body, result.Body);
        Assert.Equal(0, result.Leftover);
    }

    [Fact]
    public void Request_fields_are_exposed_in_order_with_case_and_duplicates()
    {
        HttpRequestHead head = ParseRequest("POST http://example.test/a?b HTTP/1.0\r\nHost: example.test\r\nCOOKIE: a\r\ncookie: b\r\nX-Empty:\r\nX-Latin: caf\u00e9\r\nContent-Length: 0\r\n\r\n");
        Assert.Equal("POST", head.Method);
        Assert.Equal("http://example.test/a?b", head.Target);
        Assert.Equal(HttpVersion.Version10, head.Version);
        Assert.Equal(6, head.Headers.Count);
        Assert.Equal(new HttpHeader("COOKIE", "a"), head.Headers[1]);
        Assert.Equal(new HttpHeader("cookie", "b"), head.Headers[2]);
        Assert.Equal(["a", "b"], head.Headers.GetValues("Cookie"));
        Assert.Equal(string.Empty, head.Headers.Get("x-empty"));
        Assert.Equal("caf\u00e9", head.Headers.Get("X-Latin"));
    }

    [Fact]
    public void Response_fields_are_exposed()
    {
        HttpResponseHead head = ParseResponse("HTTP/1.1 404 Not Found\r\nServer: t\r\n\r\n");
        Assert.Equal(HttpVersion.Version11, head.Version);
        Assert.Equal(404, head.StatusCode);
        Assert.Equal("Not Found", head.ReasonPhrase);
        Assert.Equal("t", head.Headers.Get("server"));

        HttpResponseHead bare = ParseResponse("HTTP/1.0 200\r\n\r\n");
        Assert.Equal(string.Empty, bare.ReasonPhrase);
        Assert.Equal(HttpVersion.Version10, bare.Version);
    }

    [Fact]
    public void Consumed_stops_at_the_end_of_the_head_leaving_the_body_and_pipelined_requests()
    {
        byte[] bytes = HttpCorpus.Bytes("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.True(Http1Parser.TryParseRequestHead(buffer, Http1Limits.Default, out HttpRequestHead? first, out SequencePosition consumed));
        Assert.Equal("/1", first.Target);
        ReadOnlySequence<byte> rest = buffer.Slice(consumed);
        Assert.True(Http1Parser.TryParseRequestHead(rest, Http1Limits.Default, out HttpRequestHead? second, out consumed));
        Assert.Equal("/2", second.Target);
        Assert.Equal(0, rest.Slice(consumed).Length);
    }

    [Fact]
    public void Up_to_the_leading_empty_line_cap_is_skipped()
    {
        string crlfs = string.Concat(Enumerable.Repeat("\r\n", Http1Parser.MaxLeadingEmptyLines));
        Assert.Equal("/", ParseRequest(crlfs + "GET / HTTP/1.1\r\nHost: a\r\n\r\n").Target);
    }

    [Fact]
    public void Request_line_exactly_at_the_limit_is_accepted_and_one_more_byte_is_414()
    {
        var limits = new Http1Limits { MaxRequestLineLength = 64 };
        string line = "GET /" + new string('a', 64 - 5 - 9) + " HTTP/1.1";
        Assert.Equal(64, line.Length);
        Assert.True(Http1Parser.TryParseRequestHead(Seq(line + "\r\nHost: a\r\n\r\n"), limits, out _, out _));

        var ex = Assert.Throws<HttpProtocolException>(() => Http1Parser.TryParseRequestHead(Seq("GET /a" + line[5..] + "\r\nHost: a\r\n\r\n"), limits, out _, out _));
        Assert.Equal(RejectionReason.RequestLineTooLong, ex.Reason);
        Assert.Equal(414, ex.StatusCode);
    }

    [Fact]
    public void Oversized_request_line_is_rejected_before_its_end_arrives()
    {
        var limits = new Http1Limits { MaxRequestLineLength = 64 };
        string partial = "GET /" + new string('a', 100);
        var ex = Assert.Throws<HttpProtocolException>(() => Http1Parser.TryParseRequestHead(Seq(partial), limits, out _, out _));
        Assert.Equal(RejectionReason.RequestLineTooLong, ex.Reason);
    }

    [Fact]
    public void Oversized_header_section_is_rejected_before_its_end_arrives_with_431()
    {
        var limits = new Http1Limits { MaxHeaderBytes = 100 };
        string partial = "GET / HTTP/1.1\r\nHost: a\r\nX: " + new string('x', 200);
        var ex = Assert.Throws<HttpProtocolException>(() => Http1Parser.TryParseRequestHead(SegmentedSequence.Chunked(HttpCorpus.Bytes(partial), 7), limits, out _, out _));
        Assert.Equal(RejectionReason.HeadersTooLarge, ex.Reason);
        Assert.Equal(431, ex.StatusCode);
    }

    [Fact]
    public void Header_section_exactly_at_the_limit_is_accepted()
    {
        const string section = "Host: a\r\nX: 12345\r\n\r\n";
        var limits = new Http1Limits { MaxHeaderBytes = section.Length };
        Assert.True(Http1Parser.TryParseRequestHead(Seq("GET / HTTP/1.1\r\n" + section), limits, out _, out _));
        var tighter = new Http1Limits { MaxHeaderBytes = section.Length - 1 };
        Assert.Equal(RejectionReason.HeadersTooLarge, Assert.Throws<HttpProtocolException>(() => Http1Parser.TryParseRequestHead(Seq("GET / HTTP/1.1\r\n" + section), tighter, out _, out _)).Reason);
    }

    [Fact]
    public void Header_count_at_the_limit_is_accepted_and_one_more_is_431()
    {
        var limits = new Http1Limits { MaxHeaderCount = 3 };
        Assert.True(Http1Parser.TryParseRequestHead(Seq("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"), limits, out _, out _));
        var ex = Assert.Throws<HttpProtocolException>(() => Http1Parser.TryParseRequestHead(Seq("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n"), limits, out _, out _));
        Assert.Equal(RejectionReason.TooManyHeaders, ex.Reason);
    }

    [Fact]
    public void Write_request_head_preserves_order_case_and_duplicates()
    {
        var head = new HttpRequestHead { Method = "PATCH", Target = "/x?y=1", Version = HttpVersion.Version11 };
        head.Headers.Add("host", "a");
        head.Headers.Add("X-DUP", "1");
        head.Headers.Add("x-dup", "2");
        head.Headers.Add("Empty", "");
        Assert.Equal("PATCH /x?y=1 HTTP/1.1\r\nhost: a\r\nX-DUP: 1\r\nx-dup: 2\r\nEmpty: \r\n\r\n", Write(head));
    }

    [Fact]
    public void Write_response_head_is_byte_exact()
    {
        var head = new HttpResponseHead { Version = HttpVersion.Version10, StatusCode = 503, ReasonPhrase = "Service Unavailable" };
        head.Headers.Add("Retry-After", "5");
        head.Headers.Add("X-Latin", "\u00e9");
        var writer = new ArrayBufferWriter<byte>();
        Http1Parser.WriteResponseHead(head, writer);
        Assert.Equal(HttpCorpus.Bytes("HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nX-Latin: \u00e9\r\n\r\n"), writer.WrittenSpan.ToArray());

        head.ReasonPhrase = "";
        writer.Clear();
        Http1Parser.WriteResponseHead(head, writer);
        Assert.StartsWith("HTTP/1.0 503 \r\n", System.Text.Encoding.Latin1.GetString(writer.WrittenSpan), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET\r\nX", "/")]
    [InlineData("GET", "/ HTTP/1.1\r\nX: y")]
    [InlineData("GET", "")]
    [InlineData("", "/")]
    public void Write_refuses_injection_through_method_or_target(string method, string target)
    {
        var head = new HttpRequestHead { Method = method, Target = target };
        Assert.Throws<ArgumentException>(() => Http1Parser.WriteRequestHead(head, new ArrayBufferWriter<byte>()));
    }

    [Fact]
    public void Write_refuses_bad_status_reason_and_version()
    {
        Assert.Throws<ArgumentException>(() => Http1Parser.WriteResponseHead(new HttpResponseHead { StatusCode = 99 }, new ArrayBufferWriter<byte>()));
        Assert.Throws<ArgumentException>(() => Http1Parser.WriteResponseHead(new HttpResponseHead { ReasonPhrase = "OK\r\nX: y" }, new ArrayBufferWriter<byte>()));
        Assert.Throws<ArgumentException>(() => Http1Parser.WriteResponseHead(new HttpResponseHead { Version = HttpVersion.Version20 }, new ArrayBufferWriter<byte>()));
    }

    [Fact]
    public void Parsed_then_written_head_parses_to_the_same_head()
    {
        string raw = "GET /p HTTP/1.1\r\nHost: a\r\nX-A:   spaced value  \r\nx-a: two\r\n\r\n";
        HttpRequestHead head = ParseRequest(raw);
        string written = Write(head);
        Assert.Equal("GET /p HTTP/1.1\r\nHost: a\r\nX-A: spaced value\r\nx-a: two\r\n\r\n", written);
        Assert.Equal(written, Write(ParseRequest(written)));
    }

    [Fact]
    public void Limits_defaults_match_the_documented_sources()
    {
        Http1Limits d = Http1Limits.Default;
        Assert.Equal(8 * 1024, d.MaxRequestLineLength);
        Assert.Equal(32 * 1024, d.MaxHeaderBytes);
        Assert.Equal(100, d.MaxHeaderCount);
        Assert.Equal(1024, d.MaxChunkExtensionLength);
        Assert.Equal(32 * 1024, d.MaxTrailerBytes);
        Assert.Equal(16, d.MaxChunkSizeDigits);
    }

    [Fact]
    public void Every_rejection_reason_maps_to_a_status_code()
    {
        foreach (RejectionReason reason in Enum.GetValues<RejectionReason>())
        {
            Assert.Contains(RejectionStatus.ToStatusCode(reason), new[] { 400, 414, 431, 501, 505 });
            Assert.Equal(502, RejectionStatus.ToStatusCode(reason, inResponse: true));
        }

        Assert.Equal(414, RejectionStatus.ToStatusCode(RejectionReason.RequestLineTooLong));
        Assert.Equal(431, RejectionStatus.ToStatusCode(RejectionReason.HeadersTooLarge));
        Assert.Equal(431, RejectionStatus.ToStatusCode(RejectionReason.TooManyHeaders));
        Assert.Equal(501, RejectionStatus.ToStatusCode(RejectionReason.UnsupportedTransferCoding));
        Assert.Equal(505, RejectionStatus.ToStatusCode(RejectionReason.UnsupportedHttpVersion));
        Assert.Throws<ArgumentOutOfRangeException>(() => RejectionStatus.ToStatusCode((RejectionReason)999));
    }

    internal static HttpRequestHead ParseRequest(string raw)
    {
        Assert.True(Http1Parser.TryParseRequestHead(Seq(raw), Http1Limits.Default, out HttpRequestHead? head, out _));
        return head;
    }

    internal static HttpResponseHead ParseResponse(string raw)
    {
        Assert.True(Http1Parser.TryParseResponseHead(Seq(raw), Http1Limits.Default, out HttpResponseHead? head, out _));
        return head;
    }

    internal static ReadOnlySequence<byte> Seq(string latin1) => new(HttpCorpus.Bytes(latin1));

    private static string Write(HttpRequestHead head)
    {
        var writer = new ArrayBufferWriter<byte>();
        Http1Parser.WriteRequestHead(head, writer);
        return System.Text.Encoding.Latin1.GetString(writer.WrittenSpan);
    }

    /// <summary>The writer emits "Name: value" with OWS trimmed; normalize the expected text the same way.</summary>
    private static string NormalizeOws(string head)
    {
        string[] lines = head.Split("\r\n");
        for (int i = 1; i < lines.Length; i++)
        {
            int colon = lines[i].IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                lines[i] = lines[i][..colon] + ": " + lines[i][(colon + 1)..].Trim(' ', '\t');
            }
        }

        return string.Join("\r\n", lines);
    }

    private static IEnumerable<byte[]> SplitEvery(byte[] bytes, int size)
    {
        for (int i = 0; i < bytes.Length; i += size)
        {
            yield return bytes[i..Math.Min(bytes.Length, i + size)];
        }
    }

    private static TheoryData<int> Indexes(int count)
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < count; i++)
        {
            data.Add(i);
        }

        return data;
    }
}
