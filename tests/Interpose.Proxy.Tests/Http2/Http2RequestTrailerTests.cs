using System.Text;
using Interpose.Core.Http2;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// A client's trailer section (HEADERS with END_STREAM after DATA, RFC 9113 §8.1) that the proxy cannot forward resets
/// that stream alone and stops its exchange; one that arrives after the proxy reset the stream is ignored (§5.1). Raw
/// frames over h2c in a tunnel, to an HTTP/1.1 origin that reports how each request body ended; the proxy's clock is a
/// <see cref="ManualClock"/> that never moves, so no proxy timeout can end a wait in place of what the test checks.
/// </summary>
public sealed class Http2RequestTrailerTests(ITestOutputHelper output)
{
    [Fact]
    public Task Malformed_trailers_reset_the_stream_and_stop_its_exchange() =>
        // RFC 9113 §8.2.1: a value with leading or trailing whitespace makes the trailer section malformed.
        AssertTrailersAfterDataResetTheStreamAsync([("x-t", " bad ")]);

    [Fact]
    public Task Trailers_over_the_field_limit_reset_the_stream_instead_of_losing_fields() =>
        // Half as many fields again as a section may hold: the decoder emits the first 100 only.
        AssertTrailersAfterDataResetTheStreamAsync([.. Enumerable.Range(0, Http2Limits.MaxHeaderFieldCount * 3 / 2).Select(i => ($"x-t{i}", "v"))]);

    /// <summary>A POST whose first DATA reached the origin, then <paramref name="trailers"/>: the stream must be reset
    /// and its exchange stopped (<see cref="AssertResetAndNothingMoreAsync"/>).</summary>
    private async Task AssertTrailersAfterDataResetTheStreamAsync((string Name, string Value)[] trailers)
    {
        var bodies = new BodyReport();
        await using var origin = bodies.Origin();
        await using var proxy = await StartProxyAsync();
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        client.Headers(1, "POST", "/upload", endStream: false);
        client.Data(1, "abc"u8.ToArray(), endStream: false);
        await client.FlushAsync();
        await bodies.ChunkSeen.Task.WaitAsync(BoundedRead.Limit);

        client.Trailers(1, trailers);
        await client.FlushAsync();

        await AssertResetAndNothingMoreAsync(client, bodies);
    }

    [Fact]
    public async Task Trailers_on_a_stream_the_proxy_reset_are_ignored()
    {
        var bodies = new BodyReport();
        await using var origin = bodies.Origin();
        await using var proxy = await StartProxyAsync();
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        // A malformed head (RFC 9113 §8.2.1) is reset at once, before any stream is set up for it; the client, which
        // had not seen the reset yet, goes on sending the request's trailers.
        client.Headers(1, "POST", "/upload", endStream: false, ("x-a", " bad"));
        await client.FlushAsync();
        var reset = await client.ReadUntilAsync(f => f.Type == FrameType.RstStream && f.StreamId == 1);
        Assert.NotNull(reset);
        Assert.Equal(Http2ErrorCode.ProtocolError, reset.ErrorCode);

        client.Trailers(1, ("x-t", "v"));
        client.Headers(3, "GET", "/hello", endStream: true);
        await client.FlushAsync();

        // RFC 9113 §5.1: frames on a stream closed by our RST_STREAM are ignored; the connection serves the next stream.
        var frames = await client.CollectUntilAsync(f => f.StreamId == 3 && (f.Flags & FrameFlags.EndStream) != 0);
        Assert.DoesNotContain(frames, f => f.Type == FrameType.GoAway);
        Assert.Equal("ok", Encoding.ASCII.GetString([.. frames.Where(f => f.StreamId == 3 && f.Type == FrameType.Data).SelectMany(f => f.Payload)]));
    }

    /// <summary>Stream 1 was reset with PROTOCOL_ERROR, the origin connection of its exchange closed before the request
    /// was complete, and the connection's next stream saw no frame of stream 1 go by.</summary>
    private static async Task AssertResetAndNothingMoreAsync(H2RawClient client, BodyReport bodies)
    {
        var reset = await client.ReadUntilAsync(f => f.StreamId == 1);
        Assert.NotNull(reset);
        Assert.Equal(FrameType.RstStream, reset.Type);
        Assert.Equal(Http2ErrorCode.ProtocolError, reset.ErrorCode);

        Assert.Equal(BodyEnd.ClosedIncomplete, await bodies.Ended.Task.WaitAsync(BoundedRead.Limit + BoundedRead.Limit));

        client.Headers(3, "GET", "/hello", endStream: true);
        await client.FlushAsync();
        var frames = await client.CollectUntilAsync(f => f.StreamId == 3 && (f.Flags & FrameFlags.EndStream) != 0);
        Assert.DoesNotContain(frames, f => f.StreamId == 1 && f.Type is FrameType.Headers or FrameType.Data);
    }

    private Task<TestProxy> StartProxyAsync() => TestProxy.StartAsync(output, o =>
    {
        o.Http2 = true;
        o.TimeProvider = new ManualClock();
    });

    private enum BodyEnd
    {
        /// <summary>The last chunk (and its trailer section) came: the origin has the whole request.</summary>
        Complete,

        /// <summary>The proxy closed the connection before the last chunk.</summary>
        ClosedIncomplete,

        /// <summary>Neither within <see cref="BoundedRead.Limit"/>: the exchange was left running.</summary>
        StillOpen,
    }

    /// <summary>An origin that answers GETs with "ok" and reports how the chunked body of a POST ended.</summary>
    private sealed class BodyReport
    {
        public TaskCompletionSource ChunkSeen { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<BodyEnd> Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public RawOrigin Origin() => new(async stream =>
        {
            var head = await RawOrigin.ReadHeadAsync(stream);
            if (head.StartsWith("GET ", StringComparison.Ordinal))
            {
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
                await RawOrigin.WaitForCloseAsync(stream);
                return;
            }

            var body = new StringBuilder();
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    var n = await stream.ReadBoundedAsync(buffer);
                    if (n == 0)
                    {
                        Ended.TrySetResult(BodyEnd.ClosedIncomplete);
                        return;
                    }

                    body.Append(Encoding.Latin1.GetString(buffer, 0, n));
                    var text = body.ToString();
                    if (text.Contains("abc\r\n", StringComparison.Ordinal))
                    {
                        ChunkSeen.TrySetResult();
                    }

                    // RFC 9112 §7.1: last-chunk, the trailer section, then the blank line.
                    if (text.Contains("\r\n0\r\n", StringComparison.Ordinal) && text.EndsWith("\r\n\r\n", StringComparison.Ordinal))
                    {
                        Ended.TrySetResult(BodyEnd.Complete);
                        return;
                    }
                }
            }
            catch (IOException)
            {
                Ended.TrySetResult(BodyEnd.ClosedIncomplete);
            }
            catch (TimeoutException)
            {
                Ended.TrySetResult(BodyEnd.StillOpen);
            }
        });
    }
}
