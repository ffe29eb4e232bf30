using System.Text;
using Interpose.Core.Http2;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// The client side pools its stream objects per connection and starts the idle timeout from the stream that ends the
/// last one (issue 15, per-stream allocation): nothing of a finished stream may reach the next one, and an idle
/// connection must still end.
/// </summary>
public sealed class Http2StreamReuseTests(ITestOutputHelper output)
{
    /// <summary>Sequential streams on one connection, alternating a declared Content-Length and none, each body of a
    /// different length: a recycled stream that kept its predecessor's Content-Length, received octets, body pipe or
    /// response sink would reset the stream or answer with another stream's body.</summary>
    /// <remarks>Which stream objects are reused depends on when each finished task was recycled; the outcome does not:
    /// every stream must echo its own body whatever object served it.</remarks>
    [Fact]
    public async Task Each_stream_of_a_connection_gets_its_own_body_back()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.TimeProvider = new ManualClock();
        });
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        await client.SettledAsync();

        for (var i = 0; i < 24; i++)
        {
            var id = (2 * i) + 1;
            var body = Encoding.ASCII.GetBytes(new string((char)('a' + i), 3 + (i * 7)));
            if (i % 2 == 0)
            {
                client.Headers(id, "POST", "/echo", endStream: false, ("content-length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
            else
            {
                client.Headers(id, "POST", "/echo", endStream: false);
            }

            client.Data(id, body, endStream: true);
            await client.FlushAsync();

            var echoed = new List<byte>();
            var ended = await client.ReadUntilAsync(f =>
            {
                Assert.False(f.Type == FrameType.RstStream, $"stream {f.StreamId} reset with {f.ErrorCode}");
                Assert.False(f.Type == FrameType.GoAway, $"GOAWAY {f.ErrorCode}");
                if (f.Type == FrameType.Data && f.StreamId == id)
                {
                    echoed.AddRange(f.Payload);
                }

                return f.StreamId == id && (f.Flags & FrameFlags.EndStream) != 0;
            });
            Assert.NotNull(ended);
            Assert.Equal(body, echoed.ToArray());
        }
    }

    /// <summary>The stream that ends the last one starts the keep-alive timeout itself (the reader is not woken for it):
    /// without that, a connection whose streams all ended would never time out.</summary>
    [Fact]
    public async Task A_connection_idle_after_its_last_stream_ends_with_a_graceful_goaway()
    {
        var idle = TimeSpan.FromSeconds(77);
        var clock = new ManualClock();
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.TimeProvider = clock;
            o.Timeouts.IdleKeepAlive = idle;
        });
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);
        await client.SettledAsync();

        // The idle timeout armed once after the preface (no stream yet).
        await clock.ArmedAsync(idle).WaitAsync(BoundedRead.Limit);
        client.Headers(1, "GET", "/hello", endStream: true);
        await client.FlushAsync();
        Assert.NotNull(await client.ReadUntilAsync(f => f.StreamId == 1 && (f.Flags & FrameFlags.EndStream) != 0));

        // Armed a second time once the stream ended, while the reader waits for frames that do not come.
        await clock.ArmedAsync(idle, times: 2).WaitAsync(BoundedRead.Limit);
        clock.Advance(idle);

        var goAway = await client.ReadUntilAsync(f => f.Type == FrameType.GoAway);
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.NoError, goAway.ErrorCode);
        Assert.Equal(1, goAway.LastStreamId);
    }
}
