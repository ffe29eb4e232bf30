using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// An idle keep-alive connection holds no pooled buffer of its own (issue 19): no pipe segment, no scratch array, and
/// on TLS connections OpenSSL frees its record buffers when they are empty. The proxy logs what a connection holds at
/// the moment it starts waiting (events 126 and 165, Trace), and the next request on it still works.
/// </summary>
public sealed class IdleConnectionTests(ITestOutputHelper output)
{
    private const int ClientIdle = 126;
    private const int UpstreamIdle = 165;

    [Fact]
    public async Task A_plain_keep_alive_connection_and_its_pooled_origin_connection_hold_no_buffer_while_idle()
    {
        await using var origin = RawOrigin.Recording();
        using var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, minimumLevel: LogLevel.Trace, logs: logs);
        await using var client = await RawClient.ConnectAsync(proxy);
        var request = $"GET http://localhost:{origin.Port}/ HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n";

        var idle = await AssertIdleThenBusyAgainAsync(client, request, logs, "holding 0 pooled buffers; TLS record buffers released when empty: False");
        Assert.Contains("HTTP/1.1 server connections: 1", idle.Message, StringComparison.Ordinal);

        // The second request went over the same (pooled) origin connection.
        Assert.Equal(1, origin.AcceptedConnections);
    }

    [Fact]
    public async Task An_intercepted_connection_and_its_pooled_tls_origin_connection_hold_no_buffer_while_idle()
    {
        await using var origin = await KestrelOrigin.StartAsync(MapFixed, TestPki.Issue(TestPki.OriginRoot, "localhost"));
        using var logs = new LogCollector();
        var counter = new ConnectionCounter();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(counter), LogLevel.Trace, logs);
        await using var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);
        var request = $"GET /fixed HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n";

        // Both TLS connections also gave back their memory BIOs' buffers (the handshake and the exchange grew them).
        var idle = await AssertIdleThenBusyAgainAsync(tunnel, request, logs, "holding 0 pooled buffers; TLS record buffers released when empty: True; TLS memory BIO bytes: 0");

        Assert.Equal(1, counter.ServerConnections);

        // The proxy's own HTTP/1.1 connection that read the CONNECT (its pipeline, decoder, parser state) was disposed
        // before the tunnel's: only the one inside the tunnel is left while it waits.
        Assert.Contains("HTTP/1.1 server connections: 1", idle.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Giving the BIO buffers back before every request of a busy keep-alive connection, and allocating them again for
    /// the next, cost about 3 µs of proxy CPU per exchange: a connection whose exchanges follow each other within a second
    /// keeps them while they are small, and gives them back when a request comes after a pause.
    /// </summary>
    [LinuxFact]
    public async Task A_busy_connection_keeps_its_small_tls_bio_buffers_between_exchanges_and_gives_them_back_after_a_pause()
    {
        await using var origin = await KestrelOrigin.StartAsync(MapFixed, TestPki.Issue(TestPki.OriginRoot, "localhost"));
        using var logs = new LogCollector();
        var clock = new ManualClock();
        await using var proxy = await TestProxy.StartAsync(output, o => o.TimeProvider = clock, LogLevel.Trace, logs);
        await using var tunnel = await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);
        var request = Encoding.ASCII.GetBytes($"GET /fixed HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n");

        // The first exchange: nothing before it, so both sides give their buffers back.
        Assert.Equal((0L, 0L), await ExchangeThenIdleBioBytesAsync(1));

        // The next, at once (the clock has not moved): both sides are busy and keep what the exchange grew.
        var kept = await ExchangeThenIdleBioBytesAsync(2);
        Assert.InRange(kept.Client, 1, 4 * 1024);
        Assert.InRange(kept.Origin, 1, 4 * 1024);

        // After a pause of two seconds: given back again.
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal((0L, 0L), await ExchangeThenIdleBioBytesAsync(3));

        async Task<(long Client, long Origin)> ExchangeThenIdleBioBytesAsync(int exchange)
        {
            await tunnel.WriteAsync(request);
            await ReadOkAsync(tunnel);
            return (BioBytes(await logs.WaitForAsync(ClientIdle, exchange)), BioBytes(await logs.WaitForAsync(UpstreamIdle, exchange)));
        }
    }

    [LinuxFact]
    public async Task Release_buffers_mode_is_set_on_an_sslstream_over_openssl()
    {
        Assert.True(TlsBufferRelease.Supported);
        await using var pair = await TlsPair.CreateAsync();

        Assert.False(TlsBufferRelease.IsEnabled(pair.Server));
        Assert.True(TlsBufferRelease.TryEnable(pair.Server));
        Assert.True(TlsBufferRelease.IsEnabled(pair.Server));

        // Data still flows both ways after the buffers were freed (the mode takes effect at the first read and write).
        var got = new byte[5];
        for (var i = 0; i < 3; i++)
        {
            await ExchangeAsync(pair, got);
        }
    }

    [LinuxFact]
    public async Task An_idle_sslstreams_memory_bios_give_their_buffers_back_and_grow_again_when_used()
    {
        await using var pair = await TlsPair.CreateAsync();
        var got = new byte[5];

        // The handshake and a first exchange leave both BIOs with buffers of their own (BUF_MEM never shrinks).
        await ExchangeAsync(pair, got);
        var held = TlsBufferRelease.HeldBioBytes(pair.Server);
        Assert.True(held > 0, $"held {held}");

        Assert.Equal(held, TlsBufferRelease.ReleaseIdleBios(pair.Server));
        Assert.Equal(0, TlsBufferRelease.HeldBioBytes(pair.Server));

        // A large record each way: the fresh buffers work and grow as before.
        var big = new byte[16 * 1024];
        await pair.Client.WriteAsync(big);
        await pair.Server.ReadExactlyBoundedAsync(big);
        await pair.Server.WriteAsync(big);
        await pair.Client.ReadExactlyBoundedAsync(big);
        await ExchangeAsync(pair, got);
        Assert.True(TlsBufferRelease.HeldBioBytes(pair.Server) > 16 * 1024);

        Assert.True(TlsBufferRelease.ReleaseIdleBios(pair.Server) > 16 * 1024);
        await ExchangeAsync(pair, got);
    }

    [Fact]
    public async Task Tls_under_an_intercepted_tunnel_reads_the_peeked_bytes_first_then_the_socket_without_the_pipe()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        using var sender = new System.Net.Sockets.TcpClient();
        await sender.ConnectAsync(System.Net.IPAddress.Loopback, ((System.Net.IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await listener.AcceptTcpClientAsync();
        await using var network = accepted.GetStream();
        var pipe = System.IO.Pipelines.PipeReader.Create(network, new System.IO.Pipelines.StreamPipeReaderOptions(leaveOpen: true));
        await sender.GetStream().WriteAsync("peeked"u8.ToArray());

        // The tunnel looked at the first bytes without consuming them (as it does with a ClientHello).
        var peek = await pipe.ReadAsync().AsTask().WaitAsync(BoundedRead.Limit);
        while (peek.Buffer.Length < 6)
        {
            pipe.AdvanceTo(peek.Buffer.Start, peek.Buffer.End);
            peek = await pipe.ReadAsync().AsTask().WaitAsync(BoundedRead.Limit);
        }

        pipe.AdvanceTo(peek.Buffer.Start);
        await using var under = new PipeReaderDuplexStream(pipe, network);

        var got = new byte[6];
        await under.ReadExactlyBoundedAsync(got);
        Assert.Equal("peeked"u8.ToArray(), got);
        Assert.True(under.ReadsFromPipe);

        // The pipe is empty: the next read goes to the socket itself, and the pipe is completed.
        await sender.GetStream().WriteAsync("direct"u8.ToArray());
        await under.ReadExactlyBoundedAsync(got);
        Assert.Equal("direct"u8.ToArray(), got);
        Assert.False(under.ReadsFromPipe);
        Assert.Throws<InvalidOperationException>(() => pipe.TryRead(out _));
    }

    private static async Task ExchangeAsync(TlsPair pair, byte[] got)
    {
        await pair.Client.WriteAsync("hello"u8.ToArray());
        await pair.Server.ReadExactlyBoundedAsync(got);
        Assert.Equal("hello"u8.ToArray(), got);
        await pair.Server.WriteAsync("world"u8.ToArray());
        await pair.Client.ReadExactlyBoundedAsync(got);
        Assert.Equal("world"u8.ToArray(), got);
    }

    /// <summary>
    /// One exchange; then both the client connection and its origin connection, once their reads wait, log
    /// <paramref name="expected"/>; then a second exchange on the same client connection works.
    /// </summary>
    /// <returns>The client connection's idle event.</returns>
    private static async Task<LogEntry> AssertIdleThenBusyAgainAsync(Stream client, string request, LogCollector logs, string expected)
    {
        var bytes = Encoding.ASCII.GetBytes(request);
        await client.WriteAsync(bytes);
        await ReadOkAsync(client);

        var idle = await logs.WaitForAsync(ClientIdle);
        Assert.Contains(expected, idle.Message, StringComparison.Ordinal);
        Assert.Contains(expected, (await logs.WaitForAsync(UpstreamIdle)).Message, StringComparison.Ordinal);

        await client.WriteAsync(bytes);
        await ReadOkAsync(client);
        return idle;
    }

    /// <summary>The "TLS memory BIO bytes" an idle event reports.</summary>
    private static long BioBytes(LogEntry idle)
    {
        const string Label = "TLS memory BIO bytes: ";
        var at = idle.Message.IndexOf(Label, StringComparison.Ordinal);
        Assert.True(at >= 0, idle.Message);
        var digits = idle.Message[(at + Label.Length)..].TakeWhile(char.IsAsciiDigit).ToArray();
        return long.Parse(digits, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void MapFixed(WebApplication app) =>
        app.MapGet("/fixed", (HttpContext context) =>
        {
            context.Response.ContentLength = 2;
            return context.Response.WriteAsync("ok");
        });

    /// <summary>Reads one 200 response with a 2-byte body ("ok"), leaving the connection open.</summary>
    private static async Task ReadOkAsync(Stream stream)
    {
        var head = await RawOrigin.ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 2", head, StringComparison.OrdinalIgnoreCase);
        var body = new byte[2];
        await stream.ReadExactlyBoundedAsync(body);
        Assert.Equal("ok"u8.ToArray(), body);
    }

    /// <summary>Two SslStreams handshaken over a loopback TCP connection.</summary>
    private sealed class TlsPair(SslStream client, SslStream server) : IAsyncDisposable
    {
        public SslStream Client { get; } = client;

        public SslStream Server { get; } = server;

        public static async Task<TlsPair> CreateAsync()
        {
            using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            listener.Start();
            var connect = new System.Net.Sockets.TcpClient();
            var connecting = connect.ConnectAsync(System.Net.IPAddress.Loopback, ((System.Net.IPEndPoint)listener.LocalEndpoint).Port);
            var accepted = await listener.AcceptTcpClientAsync();
            await connecting;
            var root = TestPki.OriginRoot;
            var client = new SslStream(connect.GetStream(), leaveInnerStreamOpen: false);
            var server = new SslStream(accepted.GetStream(), leaveInnerStreamOpen: false);
            await Task.WhenAll(
                client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "localhost",
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = (_, cert, _, errors) => TestProxy.ChainsTo(cert, root, errors),
                }),
                server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = TestPki.Issue(root, "localhost"),
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                })).WaitAsync(BoundedRead.Limit);
            return new TlsPair(client, server);
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Server.DisposeAsync();
        }
    }
}
