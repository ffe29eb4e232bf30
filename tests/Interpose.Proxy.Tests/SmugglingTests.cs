using System.Buffers;
using System.Text;
using Interpose.Core;
using Interpose.Core.Http;
using Interpose.Core.Tests.Corpus;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// Request smuggling and response splitting over real sockets: every invalid request of the Core corpus is answered
/// with its status and closed, and nothing of it reaches the origin; hostile origin responses become 502 and the
/// origin connection is never reused.
/// </summary>
public sealed class SmugglingTests(ITestOutputHelper output)
{
    /// <summary>Indexes into <see cref="HttpCorpus.InvalidRequests"/>.</summary>
    public static TheoryData<int> AllInvalidRequests => [.. Enumerable.Range(0, HttpCorpus.InvalidRequests.Count)];

    /// <summary>The invalid requests a CONNECT tunnel recognizes as HTTP (others are relayed as opaque bytes, by design).</summary>
    public static TheoryData<int> InvalidHttpRequests =>
    [
        .. Enumerable.Range(0, HttpCorpus.InvalidRequests.Count)
            .Where(i => ProtocolSniffer.Detect(new ReadOnlySequence<byte>(HttpCorpus.Bytes(HttpCorpus.InvalidRequests[i].Raw))) == SniffedProtocol.Http),
    ];

    [Theory]
    [MemberData(nameof(AllInvalidRequests))]
    public async Task Invalid_request_to_the_proxy_gets_its_status_and_a_close(int index)
    {
        var (raw, reason) = HttpCorpus.InvalidRequests[index];
        await using var proxy = await TestProxy.StartAsync(output);

        var answer = await SendAsync(await RawClient.ConnectAsync(proxy), raw);

        AssertRejected(answer, reason);
    }

    [Theory]
    [MemberData(nameof(InvalidHttpRequests))]
    public async Task Invalid_request_in_a_tunnel_gets_its_status_and_nothing_reaches_the_origin(int index)
    {
        var (raw, reason) = HttpCorpus.InvalidRequests[index];
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output);

        var answer = await SendAsync(await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: false), raw);

        AssertRejected(answer, reason);
        Assert.Equal("", origin.ReceivedText);
    }

    [Fact]
    public async Task Absolute_form_target_wins_over_a_disagreeing_host()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output);

        var answer = await SendAsync(await RawClient.ConnectAsync(proxy), $"GET http://localhost:{origin.Port}/x HTTP/1.1\r\nHost: internal.example\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.Contains($"\r\nHost: localhost:{origin.Port}\r\n", origin.ReceivedText, StringComparison.Ordinal);
        Assert.DoesNotContain("internal.example", origin.ReceivedText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Host: a\r\nHost: b\r\n", 400)]
    [InlineData("Host: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n", 400)]
    [InlineData("Host: a\r\nTransfer-Encoding: xchunked\r\n", 501)]
    public async Task Pipelined_bad_request_after_a_good_one_never_reaches_the_origin(string badFields, int status)
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output);

        var answer = await SendAsync(
            await RawClient.ConnectAsync(proxy),
            $"GET http://localhost:{origin.Port}/first HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n" +
            $"POST http://localhost:{origin.Port}/second HTTP/1.1\r\n{badFields}\r\n");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains($"okHTTP/1.1 {status} ", answer, StringComparison.Ordinal);
        Assert.Contains("GET /first ", origin.ReceivedText, StringComparison.Ordinal);
        Assert.DoesNotContain("second", origin.ReceivedText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ZZ\r\n")]
    [InlineData("FFFFFFFFFFFFFFFFF\r\n")]
    [InlineData("-1\r\n")]
    [InlineData("5 \r\nhello\r\n")]
    [InlineData("5\nhello\r\n")]
    [InlineData("5\r\nhelloXX")]
    public async Task Bad_chunk_in_a_request_body_stops_the_body_and_smuggles_nothing(string badChunk)
    {
        await using var origin = RawOrigin.Recording(response: null);
        await using var proxy = await TestProxy.StartAsync(output);

        var answer = await SendAsync(
            await RawClient.ConnectAsync(proxy),
            $"POST http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nTransfer-Encoding: chunked\r\n\r\n" +
            $"3\r\nabc\r\n{badChunk}0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400 ", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("smuggled", origin.ReceivedText, StringComparison.Ordinal);
        // The head may or may not have reached the origin before the bad chunk was read; what follows it must not.
        var received = origin.ReceivedText;
        var relayedBody = received[(received.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 1)..];
        Assert.DoesNotContain(badChunk.TrimEnd('\r', '\n'), relayedBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Oversized_chunk_extension_is_rejected_before_it_reaches_the_origin()
    {
        await using var origin = RawOrigin.Recording(response: null);
        await using var proxy = await TestProxy.StartAsync(output);

        var answer = await SendAsync(
            await RawClient.ConnectAsync(proxy),
            $"POST http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nTransfer-Encoding: chunked\r\n\r\n" +
            $"1;ext={new string('e', Http1Limits.DefaultMaxChunkExtensionLength + 10)}\r\nx\r\n0\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400 ", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("eeee", origin.ReceivedText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n")]
    public async Task Hostile_origin_response_head_gives_502_and_the_origin_connection_is_not_reused(string response)
    {
        await using var origin = RawOrigin.Recording(response);
        await using var proxy = await TestProxy.StartAsync(output);

        var first = await SendAsync(await RawClient.ConnectAsync(proxy), $"GET http://localhost:{origin.Port}/1 HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n");
        var second = await SendAsync(await RawClient.ConnectAsync(proxy), $"GET http://localhost:{origin.Port}/2 HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 502 ", first, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 502 ", second, StringComparison.Ordinal);
        Assert.Equal(2, origin.AcceptedConnections);
    }

    [Fact]
    public async Task Bad_chunk_in_an_origin_response_closes_the_client_and_the_origin_connection_is_not_reused()
    {
        await using var origin = RawOrigin.Recording("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nZZ\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled");
        await using var proxy = await TestProxy.StartAsync(output);

        // The head was relayed before the bad chunk arrived (streaming), so the only honest signal left is an
        // incomplete message: the client connection closes without the final chunk.
        var first = await SendAsync(await RawClient.ConnectAsync(proxy), $"GET http://localhost:{origin.Port}/1 HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n");
        var second = await SendAsync(await RawClient.ConnectAsync(proxy), $"GET http://localhost:{origin.Port}/2 HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", first, StringComparison.Ordinal);
        Assert.DoesNotContain("smuggled", first, StringComparison.Ordinal);
        Assert.DoesNotContain("\r\n0\r\n\r\n", first, StringComparison.Ordinal);
        Assert.DoesNotContain("smuggled", second, StringComparison.Ordinal);
        Assert.Equal(2, origin.AcceptedConnections);
    }

    private static void AssertRejected(string answer, RejectionReason reason)
    {
        var status = RejectionStatus.ToStatusCode(reason);
        Assert.True(answer.StartsWith($"HTTP/1.1 {status} ", StringComparison.Ordinal), $"expected {status} for {reason}, got: {answer.Split("\r\n")[0]}");
        Assert.Contains("\r\nConnection: close\r\n", answer, StringComparison.Ordinal);
    }

    /// <summary>Writes the request and reads until the proxy closes; what came back.</summary>
    private static async Task<string> SendAsync(Stream connection, string request)
    {
        await using (connection)
        {
            await connection.WriteAsync(HttpCorpus.Bytes(request));
            return Encoding.Latin1.GetString(await RawClient.ReadToEndAsync(connection));
        }
    }
}
