using System.Buffers.Binary;
using System.Buffers.Text;
using System.Text;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// <c>Upgrade: h2c</c> (RFC 7540 §3.2) in a plain CONNECT tunnel, spoken byte by byte: the 101, the proxy's SETTINGS
/// first, the client's preface, stream 1 (the upgrade request, its body handed over whole) and later streams, to an
/// HTTP/1.1 Kestrel origin; and every case that must be answered in HTTP/1.1 instead.
/// </summary>
public sealed class H2cUpgradeTests(ITestOutputHelper output)
{
    private const string SwitchingProtocols = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";

    [Fact]
    public async Task A_get_is_upgraded_stream_1_is_served_with_the_clients_settings_and_stream_3_follows()
    {
        await using var origin = await Origins.StartPlainAsync();
        var versions = new System.Collections.Concurrent.ConcurrentQueue<(int Stream, Version Version)>();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new VersionRecorder(versions)));

        // SETTINGS_INITIAL_WINDOW_SIZE = 10 in HTTP2-Settings: stream 1's 17-byte answer must stop after 10 bytes.
        var (stream, head) = await UpgradeAsync(proxy, origin.Port, "GET /hello HTTP/1.1\r\n", Settings(new Http2Setting(SettingsParameter.InitialWindowSize, 10)));
        await using var client = new H2RawClient(stream);
        Assert.Equal(SwitchingProtocols, head);

        // RFC 7540 §3.5: the server's connection preface (SETTINGS) is the first HTTP/2 frame after the 101.
        var first = await client.ReadFrameAsync();
        Assert.NotNull(first);
        Assert.Equal(FrameType.Settings, first.Type);
        Assert.Equal(0, (int)(first.Flags & FrameFlags.Ack));
        await SendPrefaceAsync(client, stream);

        var decoder = new HpackDecoder();
        var headers = await client.ReadUntilAsync(f => f.StreamId == 1 && f.Type == FrameType.Headers);
        Assert.NotNull(headers);
        Assert.Equal("200", Decode(decoder, headers)[":status"]);
        var data = await client.ReadUntilAsync(f => f.StreamId == 1 && f.Type == FrameType.Data);
        Assert.NotNull(data);
        Assert.Equal("hello from", Encoding.ASCII.GetString(data.Payload));
        Assert.Equal(0, (int)(data.Flags & FrameFlags.EndStream));

        // More window for stream 1: the rest of its body comes.
        client.RawFrame(FrameType.WindowUpdate, 0, 1, WindowIncrement(100));
        await client.FlushAsync();
        var rest = await ReadBodyAsync(client, 1);
        Assert.Equal(" origin", Encoding.ASCII.GetString(rest));

        // A second stream on the same connection.
        client.Headers(3, "GET", "/hello", endStream: true);
        client.RawFrame(FrameType.WindowUpdate, 0, 3, WindowIncrement(100));
        await client.FlushAsync();
        var second = await client.ReadUntilAsync(f => f.StreamId == 3 && f.Type == FrameType.Headers);
        Assert.NotNull(second);
        Assert.Equal("200", Decode(decoder, second)[":status"]);
        Assert.Equal("hello from origin", Encoding.ASCII.GetString(await ReadBodyAsync(client, 3)));

        // Both exchanges went through the pipeline as HTTP/2 client streams.
        Assert.Equal([(1, System.Net.HttpVersion.Version20), (3, System.Net.HttpVersion.Version20)], versions.ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_post_body_sent_before_the_switch_reaches_the_origin_byte_exact(bool chunked)
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output);
        var body = new byte[40_000];
        new Random(7).NextBytes(body);
        var framed = chunked ? Chunked(body) : body;
        var request = "POST /echo HTTP/1.1\r\n" + (chunked ? "Transfer-Encoding: chunked\r\n" : $"Content-Length: {body.Length}\r\n");

        var (stream, head) = await UpgradeAsync(proxy, origin.Port, request, Settings(), framed);
        await using var client = new H2RawClient(stream);
        Assert.Equal(SwitchingProtocols, head);
        await SendPrefaceAsync(client, stream);

        var headers = await client.ReadUntilAsync(f => f.StreamId == 1 && f.Type == FrameType.Headers);
        Assert.NotNull(headers);
        var fields = Decode(new HpackDecoder(), headers);
        Assert.Equal("200", fields[":status"]);
        Assert.Equal("HTTP/1.1", fields["x-request-protocol"]);
        Assert.Equal(body, await ReadBodyAsync(client, 1));
    }

    [Fact]
    public async Task Something_else_than_the_client_preface_after_the_101_is_a_connection_error()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output);
        var (stream, head) = await UpgradeAsync(proxy, origin.Port, "GET /hello HTTP/1.1\r\n", Settings());
        await using var client = new H2RawClient(stream);
        Assert.Equal(SwitchingProtocols, head);

        await stream.WriteAsync("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray());

        var goAway = await client.ReadUntilAsync(f => f.Type == FrameType.GoAway);
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.ProtocolError, goAway.ErrorCode);
    }

    public static TheoryData<string, string> Declined => new()
    {
        { "no HTTP2-Settings", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" },
        { "two HTTP2-Settings", $"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {Settings()}\r\nHTTP2-Settings: {Settings()}\r\n" },
        { "not base64url", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA+AAAZAAE\r\n" },
        { "5 octets", $"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {Base64Url.EncodeToString(new byte[5])}\r\n" },
        { "ENABLE_PUSH = 2", $"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {Settings(new Http2Setting(SettingsParameter.EnablePush, 2))}\r\n" },
        { "MAX_FRAME_SIZE too small", $"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {Settings(new Http2Setting(SettingsParameter.MaxFrameSize, 100))}\r\n" },
        { "HTTP2-Settings not in Connection", $"Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: {Settings()}\r\n" },
    };

    [Theory]
    [MemberData(nameof(Declined))]
    public async Task An_invalid_HTTP2_Settings_is_answered_in_http11(string why, string fields)
    {
        output.WriteLine(why);
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output);

        var answer = await SendInTunnelAsync(proxy, origin.Port, $"GET /x HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n", []);

        AssertAnsweredInHttp11(answer, origin);
    }

    [Theory]
    [InlineData("a body over 64 KiB", 70_000, false, false)]
    [InlineData("a chunked body over 64 KiB", 70_000, true, false)]
    [InlineData("Expect: 100-continue", 10, false, true)]
    public async Task A_body_that_cannot_be_handed_over_is_answered_in_http11(string why, int size, bool chunked, bool expect)
    {
        output.WriteLine(why);
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output);
        var body = new byte[size];
        var head = "POST /x HTTP/1.1\r\nHost: localhost\r\n" + UpgradeFields(Settings())
            + (chunked ? "Transfer-Encoding: chunked\r\n" : $"Content-Length: {size}\r\n") + (expect ? "Expect: 100-continue\r\n" : "") + "\r\n";

        var answer = await SendInTunnelAsync(proxy, origin.Port, head, chunked ? Chunked(body) : body);

        AssertAnsweredInHttp11(answer, origin);
    }

    [Fact]
    public async Task Chunked_trailers_are_answered_in_http11()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output);
        var head = "POST /x HTTP/1.1\r\nHost: localhost\r\n" + UpgradeFields(Settings()) + "Transfer-Encoding: chunked\r\n\r\n";

        var answer = await SendInTunnelAsync(proxy, origin.Port, head, "3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"u8.ToArray());

        AssertAnsweredInHttp11(answer, origin);
    }

    [Fact]
    public async Task Without_the_http2_option_the_upgrade_is_declined()
    {
        await using var origin = RawOrigin.Recording();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = false);

        var answer = await SendInTunnelAsync(proxy, origin.Port, "GET /x HTTP/1.1\r\nHost: localhost\r\n" + UpgradeFields(Settings()) + "\r\n", []);

        AssertAnsweredInHttp11(answer, origin);
    }

    [Fact]
    public async Task An_intercepted_tls_connection_never_upgrades()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output);
        await using var stream = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);

        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /hello HTTP/1.1\r\nHost: localhost\r\n" + UpgradeFields(Settings()) + "Connection: close\r\n\r\n"));
        var answer = (await RawClient.ReadUntilClosedAsync(stream)).Text;

        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nhello from origin\r\n", answer, StringComparison.Ordinal);
    }

    // ───────────────────────────── helpers ─────────────────────────────

    private static string UpgradeFields(string settings) =>
        $"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {settings}\r\n";

    /// <summary>The base64url HTTP2-Settings value for these settings (RFC 7540 §3.2.1).</summary>
    private static string Settings(params Http2Setting[] settings)
    {
        var payload = new byte[settings.Length * 6];
        for (var i = 0; i < settings.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(i * 6), (ushort)settings[i].Parameter);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(i * 6 + 2), settings[i].Value);
        }

        return Base64Url.EncodeToString(payload);
    }

    private static byte[] Chunked(byte[] body)
    {
        using var framed = new MemoryStream();
        for (var offset = 0; offset < body.Length; offset += 10_000)
        {
            var size = Math.Min(10_000, body.Length - offset);
            framed.Write(Encoding.ASCII.GetBytes($"{size:x}\r\n"));
            framed.Write(body, offset, size);
            framed.Write("\r\n"u8);
        }

        framed.Write("0\r\n\r\n"u8);
        return framed.ToArray();
    }

    /// <summary>Sends an upgrade request in a plain tunnel to 127.0.0.1:<paramref name="port"/>; returns the stream
    /// just after the answer's head, and the head.</summary>
    private static async Task<(Stream Stream, string Head)> UpgradeAsync(TestProxy proxy, int port, string requestLine, string settings, byte[]? body = null)
    {
        var stream = await RawClient.TunnelAsync(proxy, "localhost", port, tls: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(requestLine + $"Host: localhost:{port}\r\n" + UpgradeFields(settings) + "\r\n"));
        if (body is not null)
        {
            await stream.WriteAsync(body);
        }

        return (stream, await RawOrigin.ReadHeadAsync(stream));
    }

    /// <summary>RFC 7540 §3.5: after the 101 the client sends the preface (PRI + SETTINGS) and acknowledges ours.</summary>
    private static async Task SendPrefaceAsync(H2RawClient client, Stream stream)
    {
        await stream.WriteAsync(Http2Preface.ClientPreface.ToArray());
        client.RawFrame(FrameType.Settings, 0, 0, []);
        client.RawFrame(FrameType.Settings, FrameFlags.Ack, 0, []);
        await client.FlushAsync();
    }

    private static async Task<string> SendInTunnelAsync(TestProxy proxy, int port, string head, byte[] body)
    {
        await using var stream = await RawClient.TunnelAsync(proxy, "localhost", port, tls: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(body);
        var answer = await RawOrigin.ReadHeadAsync(stream);
        return answer + await RawClient.ReadAsciiAsync(stream, 2);
    }

    /// <summary>The HTTP/1.1 answer of the recording origin ("ok"), which saw none of the upgrade's hop-by-hop fields.</summary>
    private static void AssertAnsweredInHttp11(string answer, RawOrigin origin)
    {
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nok", answer, StringComparison.Ordinal);
        var received = origin.ReceivedText;
        Assert.Matches("^(GET|POST) /x HTTP/1.1\r\n", received);
        Assert.DoesNotContain("Upgrade", received, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("HTTP2-Settings", received, StringComparison.OrdinalIgnoreCase);
    }

    private static byte[] WindowIncrement(int increment)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(payload, increment);
        return payload;
    }

    /// <summary>DATA of <paramref name="streamId"/> until END_STREAM, other streams' frames skipped.</summary>
    private static async Task<byte[]> ReadBodyAsync(H2RawClient client, int streamId)
    {
        using var body = new MemoryStream();
        while (await client.ReadUntilAsync(f => f.StreamId == streamId && f.Type == FrameType.Data) is { } data)
        {
            body.Write(data.Payload);
            if ((data.Flags & FrameFlags.EndStream) != 0)
            {
                return body.ToArray();
            }

            // Credit back as a client does, so bodies larger than the initial windows flow.
            if (data.Payload.Length > 0)
            {
                client.RawFrame(FrameType.WindowUpdate, 0, 0, WindowIncrement(data.Payload.Length));
                client.RawFrame(FrameType.WindowUpdate, 0, streamId, WindowIncrement(data.Payload.Length));
                await client.FlushAsync();
            }
        }

        throw new EndOfStreamException($"the connection closed before stream {streamId} ended");
    }

    private static Dictionary<string, string> Decode(HpackDecoder decoder, ReceivedFrame headers)
    {
        var fields = new FieldCollector();
        decoder.Decode(headers.Payload, (headers.Flags & FrameFlags.EndHeaders) != 0, fields);
        return fields.Fields;
    }

    private sealed class FieldCollector : IHeaderFieldHandler
    {
        public Dictionary<string, string> Fields { get; } = [];

        public void OnHeaderField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed) =>
            Fields[Encoding.ASCII.GetString(name)] = Encoding.ASCII.GetString(value);
    }

    private sealed class VersionRecorder(System.Collections.Concurrent.ConcurrentQueue<(int, Version)> versions) : ProxyAddon
    {
        public override string Name => "versions";

        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            versions.Enqueue((exchange.StreamId, exchange.ClientVersion));
            return default;
        }
    }
}
