using System.Net;
using System.Text;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// <see cref="FlowReplayer"/>: a request recorded through the proxy, sent again, reaches the origin as the same bytes;
/// HTTPS origins validated as the proxy validates them; failures are results, not exceptions.
/// </summary>
public sealed class FlowReplayerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_replayed_request_reaches_the_origin_as_the_same_bytes_as_the_recorded_one_and_is_tagged()
    {
        await using var origin = RawOrigin.Recording();
        var sink = new MemoryFlowSink();
        string first;
        await using (var recorder = new FlowRecorder(sink))
        {
            await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(recorder));
            await using var client = await RawClient.ConnectAsync(proxy);
            await client.WriteAsync(Encoding.ASCII.GetBytes(
                $"POST http://127.0.0.1:{origin.Port}/submit?x=1 HTTP/1.1\r\nhost: 127.0.0.1:{origin.Port}\r\nX-Zeta: z\r\ncontent-type: text/plain\r\nX-alpha: a\r\n"
                + "Content-Length: 11\r\nConnection: close\r\n\r\nhello world"));
            Assert.EndsWith("\r\n\r\nok", (await RawClient.ReadUntilClosedAsync(client)).Text, StringComparison.Ordinal);
            first = origin.ReceivedText;
        }

        var recorded = Assert.IsType<HttpFlow>(Assert.Single(sink.Flows));
        var replays = new MemoryFlowSink();
        FlowReplayResult result;
        await using (var recorder = new FlowRecorder(replays))
        {
            var options = new ProxyOptions();
            options.Addons.Add(recorder);
            await using var replayer = await FlowReplayer.StartAsync(options);
            result = await replayer.ReplayAsync(recorded);
        }

        Assert.Equal((200, null), (result.StatusCode, result.Error));
        Assert.StartsWith("POST /submit?x=1 HTTP/1.1\r\nhost: ", first, StringComparison.Ordinal);
        Assert.Equal(first + first, origin.ReceivedText);
        var replayed = Assert.IsType<HttpFlow>(Assert.Single(replays.Flows));
        Assert.Equal(recorded.Id.ToString(), replayed.Tags[FlowReplayer.Tag]);
        Assert.True(FlowFilter.Parse("~replayq").Matches(replayed.AsFilterable()));
    }

    [Fact]
    public async Task HTTPS_origins_are_validated_with_the_options_roots()
    {
        await using var origin = await Origins.StartTlsAsync();
        var flow = Flow("https", "localhost", origin.Port, "/hello");

        var trusting = Loopback();
        trusting.UpstreamTrustedRoots.Add(TestPki.OriginRoot);
        await using (var replayer = await FlowReplayer.StartAsync(trusting))
        {
            Assert.Equal(200, (await replayer.ReplayAsync(flow)).StatusCode);
        }

        // The system store does not know the test PKI's root: the replay fails in the TLS step, as the proxy would.
        await using (var replayer = await FlowReplayer.StartAsync(Loopback()))
        {
            var failed = await replayer.ReplayAsync(flow);
            Assert.False(failed.Succeeded);
            Assert.StartsWith("Tls:", failed.Error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_origin_that_refuses_and_a_body_recorded_cut_are_failed_results()
    {
        await using var replayer = await FlowReplayer.StartAsync(Loopback());

        var refused = await replayer.ReplayAsync(Flow("http", "127.0.0.1", CommandSession.ClosedPort(), "/"));
        Assert.Null(refused.StatusCode);
        Assert.StartsWith("Connect:", refused.Error, StringComparison.Ordinal);

        await using var origin = RawOrigin.Recording();
        var cut = Flow("http", "127.0.0.1", origin.Port, "/up");
        cut = cut with { Request = cut.Request with { Method = "POST", Body = new FlowBody(Encoding.ASCII.GetBytes("abc"), 10, null) } };
        var notSent = await replayer.ReplayAsync(cut);
        Assert.Contains("recorded cut", notSent.Error, StringComparison.Ordinal);
        Assert.Equal(0, origin.AcceptedConnections);
    }

    [Fact]
    public async Task A_large_body_for_an_origin_that_refuses_is_a_failed_result_and_the_next_replay_goes_on()
    {
        // The proxy answers 502 and closes without reading a body this large, so the replay's write breaks off.
        await using var replayer = await FlowReplayer.StartAsync(Loopback());
        var large = Flow("http", "127.0.0.1", CommandSession.ClosedPort(), "/up");
        large = large with { Request = large.Request with { Method = "POST", Body = FlowBody.FromBytes(new byte[LargeBodyBytes]) } };

        var refused = await replayer.ReplayAsync(large);

        Assert.Null(refused.StatusCode);
        Assert.StartsWith("Connect:", refused.Error, StringComparison.Ordinal);
        await using var origin = RawOrigin.Recording();
        var next = await replayer.ReplayAsync(Flow("http", "127.0.0.1", origin.Port, "/next"));
        Assert.Equal(200, next.StatusCode);
    }

    /// <summary>Far past what the proxy drains of a body it will not forward and what loopback socket buffers hold.</summary>
    private const int LargeBodyBytes = 32 * 1024 * 1024;

    private static HttpFlow Flow(string scheme, string host, int port, string path)
    {
        var headers = new Core.Http.HttpHeaders();
        headers.Add("Host", Core.Http.Authority.Format(scheme, host, port));
        return new HttpFlow
        {
            Id = Guid.CreateVersion7(),
            StartedAt = DateTimeOffset.UnixEpoch,
            ClientHttpVersion = "HTTP/1.1",
            Request = new FlowRequest { Method = "GET", Scheme = scheme, Host = host, Port = port, Path = path, HttpVersion = "HTTP/1.1", Headers = headers },
        };
    }

    /// <summary>Options whose resolver answers loopback for every name, as TestProxy's: nothing leaves the machine.</summary>
    private static ProxyOptions Loopback() => new() { Resolver = static (_, _) => ValueTask.FromResult(new[] { IPAddress.Loopback }) };
}
