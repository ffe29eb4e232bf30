using System.Text;
using Interpose.Core.Http2;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// The frames the proxy writes to an HTTP/2 client for a relayed response (Http2FrameOutput and the stream's sink),
/// read raw over h2c prior knowledge in a CONNECT tunnel.
/// </summary>
public sealed class Http2FrameOutputTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_content_length_body_ends_with_end_stream_on_its_last_data_frame()
    {
        await using var origin = RawOrigin.Recording("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        await client.SettledAsync();
        client.Headers(1, "GET", "/", endStream: true);
        await client.FlushAsync();

        // RFC 9113 §8.1: the DATA frame that completes the Content-Length carries END_STREAM; no empty DATA follows.
        var frames = new List<ReceivedFrame>();
        while (frames.Count == 0 || (frames[^1].Flags & FrameFlags.EndStream) == 0)
        {
            var frame = await client.ReadUntilAsync(f => f.StreamId == 1);
            Assert.NotNull(frame);
            frames.Add(frame);
        }

        Assert.Equal([FrameType.Headers, FrameType.Data], frames.Select(f => f.Type));
        Assert.Equal("hello", Encoding.ASCII.GetString(frames[1].Payload));
    }
}
