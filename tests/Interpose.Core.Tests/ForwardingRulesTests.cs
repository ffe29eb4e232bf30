using System.Net;
using Interpose.Core.Http;

namespace Interpose.Core.Tests;

/// <summary>The spec wrapper's rules, without sockets: each case names the RFC section it checks.</summary>
public class ForwardingRulesTests
{
    // ── RFC 9110 §9.2.2: which requests a proxy may send again ──

    [Theory]
    [InlineData("GET", true)]
    [InlineData("HEAD", true)]
    [InlineData("OPTIONS", true)]
    [InlineData("TRACE", true)]
    [InlineData("PUT", true)]
    [InlineData("DELETE", true)]
    [InlineData("POST", false)]
    [InlineData("PATCH", false)]
    [InlineData("CONNECT", false)]
    [InlineData("get", false)]
    public void Only_the_idempotent_methods_of_RFC_9110_may_be_retried(string method, bool idempotent) =>
        Assert.Equal(idempotent, ForwardingRules.IsIdempotent(method));

    // ── RFC 9110 §4.2, §7.2: authority and Host ──

    [Theory]
    [InlineData("http", "example.test", 80, "example.test")]
    [InlineData("https", "example.test", 443, "example.test")]
    [InlineData("http", "example.test", 443, "example.test:443")]
    [InlineData("https", "::1", 8443, "[::1]:8443")]
    [InlineData("http", "::1", 80, "[::1]")]
    public void Authority_brackets_IPv6_and_leaves_out_the_default_port(string scheme, string host, int port, string expected) =>
        Assert.Equal(expected, Authority.Format(scheme, host, port));

    [Theory]
    [InlineData("example.test", "http", "example.test", 80, true)]
    [InlineData("EXAMPLE.test:80", "http", "example.test", 80, true)]
    [InlineData("example.test:8080", "http", "example.test", 80, false)]
    [InlineData("example.test", "https", "example.test", 8443, false)]
    [InlineData("[::1]:8443", "https", "::1", 8443, true)]
    [InlineData("[::1]", "https", "::1", 443, true)]
    [InlineData("other.test", "http", "example.test", 80, false)]
    [InlineData(null, "http", "example.test", 80, false)]
    public void A_Host_field_matches_the_target_authority_by_host_case_insensitively_and_port(string? field, string scheme, string host, int port, bool expected) =>
        Assert.Equal(expected, Authority.Matches(field, scheme, host, port));

    // ── RFC 9112 §9.3, §9.6, C.2.2: the Connection field towards the client ──

    [Theory]
    [InlineData("1.1", true, null)]
    [InlineData("1.1", false, "close")]
    [InlineData("1.0", true, "keep-alive")]
    [InlineData("1.0", false, "close")]
    public void Connection_says_close_when_closing_and_keep_alive_only_to_HTTP_1_0(string version, bool keepAlive, string? expected)
    {
        var headers = new HttpHeaders();
        ForwardingRules.SetConnection(headers, Version.Parse(version), keepAlive);
        Assert.Equal(expected, headers.Get("Connection"));
    }

    // ── RFC 9110 §7.6.3: Via ──

    [Fact]
    public void Via_names_the_received_version_and_a_pseudonym()
    {
        Assert.Equal("1.1 interpose", ForwardingRules.Via(HttpVersion.Version11));
        Assert.Equal("1.0 interpose", ForwardingRules.Via(HttpVersion.Version10));
    }

    // ── RFC 9110 §15.2: interim responses ──

    [Theory]
    [InlineData(100, "1.1", true)]
    [InlineData(103, "1.1", true)]
    [InlineData(100, "1.0", false)]
    [InlineData(101, "1.1", false)]
    [InlineData(200, "1.1", false)]
    public void Interim_responses_are_forwarded_except_101_and_to_HTTP_1_0(int status, string clientVersion, bool expected) =>
        Assert.Equal(expected, ForwardingRules.ForwardInterim(status, Version.Parse(clientVersion)));

    // ── RFC 9110 §8.6, RFC 9112 §6.3 item 1: a response whose body is in memory ──

    [Theory]
    [InlineData("GET", 200, true, "5")]
    [InlineData("HEAD", 200, false, "99")]
    [InlineData("GET", 304, false, "99")]
    [InlineData("GET", 204, false, null)]
    public void A_whole_response_gets_a_fresh_length_where_a_body_is_allowed(string method, int status, bool bodySent, string? contentLength)
    {
        var headers = Headers(("Content-Length", "99"), ("Transfer-Encoding", "chunked"), ("Connection", "x-hop"), ("X-Hop", "1"), ("X-Keep", "1"));
        Assert.Equal(bodySent, ForwardingRules.PrepareWholeResponse(headers, method, status, 5));
        Assert.Equal(contentLength, headers.Get("Content-Length"));
        Assert.Null(headers.Get("Transfer-Encoding"));
        Assert.Null(headers.Get("X-Hop"));
        Assert.Equal("1", headers.Get("X-Keep"));
    }

    // ── RFC 9112 §6.1-§6.3: a forwarded request's framing after the hooks ──

    [Fact]
    public void A_body_in_hand_replaces_any_framing_with_its_length()
    {
        var headers = Headers(("Transfer-Encoding", "chunked"), ("Content-Length", "1"));
        Assert.Equal(RequestBodyRelay.InHand, ForwardingRules.PrepareRequest(headers, upgrade: false, Chunked, streamed: false, transformed: false, bodyInHand: 12));
        Assert.Equal("12", headers.Get("Content-Length"));
        Assert.Null(headers.Get("Transfer-Encoding"));
    }

    [Fact]
    public void A_streamed_chunked_body_keeps_its_framing_untouched()
    {
        var headers = Headers(("Transfer-Encoding", "chunked"), ("TE", "trailers"));
        Assert.Equal(RequestBodyRelay.RawChunked, ForwardingRules.PrepareRequest(headers, upgrade: false, Chunked, streamed: true, transformed: false, bodyInHand: null));
        Assert.Equal("chunked", headers.Get("Transfer-Encoding"));
        Assert.Null(headers.Get("TE"));
    }

    [Fact]
    public void A_transformed_stream_is_sent_chunked_without_its_old_length()
    {
        var headers = Headers(("Content-Length", "10"));
        Assert.Equal(RequestBodyRelay.Rechunked, ForwardingRules.PrepareRequest(headers, upgrade: false, Length(10), streamed: true, transformed: true, bodyInHand: null));
        Assert.Null(headers.Get("Content-Length"));
        Assert.Equal("chunked", headers.Get("Transfer-Encoding"));
    }

    [Fact]
    public void Hop_by_hop_fields_a_hook_added_are_removed_and_Upgrade_kept_only_for_an_upgrade()
    {
        var headers = Headers(("Connection", "Upgrade, X-Hop"), ("Upgrade", "websocket"), ("X-Hop", "1"), ("Keep-Alive", "5"), ("Content-Length", "3"));
        Assert.Equal(RequestBodyRelay.Raw, ForwardingRules.PrepareRequest(headers, upgrade: true, Length(3), streamed: true, transformed: false, bodyInHand: null));
        Assert.Equal("websocket", headers.Get("Upgrade"));
        Assert.Null(headers.Get("X-Hop"));
        Assert.Null(headers.Get("Keep-Alive"));
        Assert.Equal("3", headers.Get("Content-Length"));

        var plain = Headers(("Upgrade", "websocket"));
        ForwardingRules.PrepareRequest(plain, upgrade: false, default, streamed: false, transformed: false, bodyInHand: null);
        Assert.Null(plain.Get("Upgrade"));
    }

    // ── RFC 9112 §6.1, §6.3, §7: how a streamed response reaches the client ──

    [Theory]
    //          origin framing         client  transform  raw    rechunk close  CL kept  TE
    [InlineData(BodyKind.ContentLength, "1.1", false, true, false, false, "5", null)]
    [InlineData(BodyKind.Chunked, "1.1", false, true, false, false, null, "chunked")]
    [InlineData(BodyKind.Chunked, "1.0", false, false, false, true, null, null)]
    [InlineData(BodyKind.ContentLength, "1.0", false, true, false, false, "5", null)]
    [InlineData(BodyKind.ContentLength, "1.1", true, false, true, false, null, "chunked")]
    [InlineData(BodyKind.ContentLength, "1.0", true, false, false, true, null, null)]
    [InlineData(BodyKind.CloseDelimited, "1.1", false, true, false, true, null, null)]
    [InlineData(BodyKind.None, "1.1", true, true, false, false, "5", null)]
    public void A_streamed_response_is_relayed_raw_when_it_can_and_reframed_when_it_must(
        BodyKind received, string clientVersion, bool transformed, bool raw, bool rechunk, bool close, string? contentLength, string? transferEncoding)
    {
        var plan = ResponseRelayPlan.For(new BodyFraming(received, received == BodyKind.ContentLength ? 5 : 0), Version.Parse(clientVersion), transformed);
        Assert.Equal((raw, rechunk, close), (plan.Raw, plan.Rechunk, plan.CloseDelimited));

        var headers = received switch
        {
            BodyKind.Chunked => Headers(("Transfer-Encoding", "chunked")),
            BodyKind.CloseDelimited => Headers(),
            _ => Headers(("Content-Length", "5")),
        };
        headers.Add("Keep-Alive", "timeout=5");
        plan.PrepareHeaders(headers);
        Assert.Equal(contentLength, headers.Get("Content-Length"));
        Assert.Equal(transferEncoding, headers.Get("Transfer-Encoding"));
        Assert.Null(headers.Get("Keep-Alive"));
    }

    // ── RFC 9112 §6.2, §6.3: a body relayed as received keeps the framing fields that describe it, whatever a hook set ──

    [Fact]
    public void A_relayed_length_overrides_a_length_a_hook_changed_or_doubled()
    {
        var changed = Headers(("Content-Length", "5"));
        ForwardingRules.FixRelayedFraming(changed, Length(10));
        Assert.Equal("10", changed.Get("Content-Length"));

        var doubled = Headers(("Content-Length", "10"), ("Content-Length", "10"));
        ForwardingRules.FixRelayedFraming(doubled, Length(10));
        Assert.Single(doubled, h => h.Name == "Content-Length");

        var right = Headers(("content-length", "10"));
        ForwardingRules.FixRelayedFraming(right, Length(10));
        Assert.Equal([new HttpHeader("content-length", "10")], right);
    }

    [Fact]
    public void A_relayed_chunked_body_has_Transfer_Encoding_and_no_length()
    {
        var headers = Headers(("Content-Length", "5"));
        ForwardingRules.FixRelayedFraming(headers, Chunked);
        Assert.Null(headers.Get("Content-Length"));
        Assert.Equal("chunked", headers.Get("Transfer-Encoding"));
    }

    [Fact]
    public void A_bodiless_request_gets_no_length_from_a_hook()
    {
        var headers = Headers(("Content-Length", "5"));
        Assert.Equal(RequestBodyRelay.None, ForwardingRules.PrepareRequest(headers, upgrade: false, default, streamed: false, transformed: false, bodyInHand: null));
        Assert.Null(headers.Get("Content-Length"));
    }

    [Fact]
    public void A_raw_response_keeps_its_real_length_but_a_bodiless_one_keeps_the_origins()
    {
        var relayed = Headers(("Content-Length", "2"));
        ResponseRelayPlan.For(Length(7), HttpVersion.Version11, transformed: false).PrepareHeaders(relayed);
        Assert.Equal("7", relayed.Get("Content-Length"));

        var head = Headers(("Content-Length", "2000"));
        ResponseRelayPlan.For(default, HttpVersion.Version11, transformed: false).PrepareHeaders(head);
        Assert.Equal("2000", head.Get("Content-Length"));
    }

    private static readonly BodyFraming Chunked = new(BodyKind.Chunked, 0);

    private static BodyFraming Length(long length) => new(BodyKind.ContentLength, length);

    private static HttpHeaders Headers(params (string Name, string Value)[] fields)
    {
        var h = new HttpHeaders();
        foreach ((string name, string value) in fields)
        {
            h.Add(name, value);
        }

        return h;
    }
}
