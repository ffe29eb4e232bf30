using System.Buffers.Binary;
using Interpose.Core.Http2;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>The client-side HTTP/2 receive windows are options (<see cref="ProxyOptions.Http2StreamWindowSize"/>,
/// <see cref="ProxyOptions.Http2ConnectionWindowSize"/>), advertised in the proxy's first frames.</summary>
public sealed class Http2WindowOptionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_configured_windows_are_what_the_proxy_advertises()
    {
        const int StreamWindow = 100_000, ConnectionWindow = 300_000;
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.Http2StreamWindowSize = StreamWindow;
            o.Http2ConnectionWindowSize = ConnectionWindow;
        });
        await using var client = await H2RawClient.ConnectAsync(proxy, "localhost", origin.Port);

        var settings = await client.ReadUntilAsync(f => f.Type == FrameType.Settings && (f.Flags & FrameFlags.Ack) == 0);
        Assert.Equal((uint)StreamWindow, SettingValue(settings!.Payload, SettingsParameter.InitialWindowSize));

        // RFC 9113 §6.9.2: the connection window starts at 65,535 and is raised by a WINDOW_UPDATE on stream 0.
        var raise = await client.ReadUntilAsync(f => f.Type == FrameType.WindowUpdate && f.StreamId == 0);
        Assert.Equal(ConnectionWindow - Http2Settings.DefaultInitialWindowSize, BinaryPrimitives.ReadInt32BigEndian(raise!.Payload) & int.MaxValue);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65_534)]
    public void Windows_below_the_protocol_default_are_refused(int size)
    {
        var options = new ProxyOptions();
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Http2StreamWindowSize = size);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Http2ConnectionWindowSize = size);
    }

    /// <summary>RFC 9113 §6.5.1: a SETTINGS payload is 6-octet entries, a 16-bit identifier and a 32-bit value.</summary>
    private static uint? SettingValue(byte[] payload, SettingsParameter parameter)
    {
        for (var i = 0; i + 6 <= payload.Length; i += 6)
        {
            if (BinaryPrimitives.ReadUInt16BigEndian(payload.AsSpan(i)) == (ushort)parameter)
            {
                return BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i + 2));
            }
        }

        return null;
    }
}
