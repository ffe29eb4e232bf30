using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.RegularExpressions;
using Interpose.Core.Flows;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>Tunnels relayed as bytes (passthrough, raw TCP) are recorded as <see cref="TunnelFlow"/>s through a real proxy.</summary>
public sealed class TunnelFlowRecordingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_passed_through_TLS_tunnel_is_recorded_with_the_bytes_each_way_sni_and_endpoints()
    {
        await using var origin = await Origins.StartTlsAsync();
        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink);
        var closed = new TunnelClosedSignal();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.IgnoreHosts.Add(new Regex("^localhost$"));
            o.Addons.Add(recorder);
            o.Addons.Add(closed);
        });

        var tunnel = (NetworkStream)await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: false);
        var counted = new CountingStream(tunnel);
        await using (var tls = new SslStream(counted, leaveInnerStreamOpen: true))
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                // Passed through: the origin's own certificate, not one forged by the proxy.
                RemoteCertificateValidationCallback = (_, cert, _, errors) => TestProxy.ChainsTo(cert, TestPki.OriginRoot, errors),
            });
            await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET /hello HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"));
            Assert.Contains("hello from origin", Encoding.ASCII.GetString(await RawClient.ReadToEndAsync(tls)), StringComparison.Ordinal);
        }

        // Whatever followed the TLS close (the TCP close) is read too, so the client saw every byte the proxy relayed.
        tunnel.Socket.Shutdown(SocketShutdown.Send);
        await RawClient.ReadToEndAsync(counted);
        var reported = await closed.Tunnel.Task.WaitAsync(BoundedRead.Limit);
        await recorder.CompleteAsync();
        tunnel.Dispose();

        var flow = Assert.IsType<TunnelFlow>(Assert.Single(sink.Flows));
        Assert.Equal(TunnelKind.TlsPassthrough, flow.Kind);
        Assert.Equal("localhost", flow.Host);
        Assert.Equal(origin.Port, flow.Port);
        Assert.Equal("localhost", flow.Sni);
        Assert.True(counted.BytesWritten > 0 && counted.BytesRead > 0);
        Assert.Equal(counted.BytesWritten, flow.BytesFromClient);
        Assert.Equal(counted.BytesRead, flow.BytesFromServer);
        Assert.Equal("127.0.0.1", flow.Client!.Host);
        Assert.Equal(origin.Port, flow.Server!.Port);
        Assert.Null(flow.Error);
        Assert.True(flow.DurationMs >= 0);
        Assert.Equal(reported.StartedAt, flow.StartedAt);
        Assert.True(flow.StartedAt > DateTimeOffset.UnixEpoch);
    }

    [Fact]
    public async Task A_raw_tcp_relay_is_recorded_with_exact_byte_counts()
    {
        await using var origin = new RawOrigin(async stream =>
        {
            var received = await RawClient.ReadToEndAsync(stream);
            await stream.WriteAsync(received);
            await stream.WriteAsync("BYE"u8.ToArray());
        });
        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink);
        var closed = new TunnelClosedSignal();
        await using var proxy = await TestProxy.StartAsync(output, o => { o.Addons.Add(recorder); o.Addons.Add(closed); });

        await using var client = (NetworkStream)await RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: false);
        var sent = "\u0001\u0002binary, not HTTP or TLS"u8.ToArray();
        await client.WriteAsync(sent);
        client.Socket.Shutdown(SocketShutdown.Send);
        var all = await RawClient.ReadToEndAsync(client);
        await closed.Tunnel.Task.WaitAsync(BoundedRead.Limit);
        await recorder.CompleteAsync();

        var flow = Assert.IsType<TunnelFlow>(Assert.Single(sink.Flows));
        Assert.Equal(TunnelKind.Raw, flow.Kind);
        Assert.Equal(sent.Length, flow.BytesFromClient);
        Assert.Equal(all.Length, flow.BytesFromServer);
        Assert.Equal(sent.Length + 3, flow.BytesFromServer);
        Assert.Null(flow.Sni);
        Assert.Null(flow.Error);
    }

    [Fact]
    public async Task A_raw_tunnel_whose_server_refuses_is_recorded_with_the_connect_error()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var closedPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink);
        var closed = new TunnelClosedSignal();
        await using var proxy = await TestProxy.StartAsync(output, o => { o.Addons.Add(recorder); o.Addons.Add(closed); });

        await using var client = await RawClient.TunnelAsync(proxy, "127.0.0.1", closedPort, tls: false);
        await client.WriteAsync("\u0001not http"u8.ToArray());
        await RawClient.ReadUntilClosedAsync(client);
        await closed.Tunnel.Task.WaitAsync(BoundedRead.Limit);
        await recorder.CompleteAsync();

        var flow = Assert.IsType<TunnelFlow>(Assert.Single(sink.Flows));
        Assert.Equal(TunnelKind.Raw, flow.Kind);
        Assert.Equal("connect", flow.Error?.Phase);
        Assert.Null(flow.Server);
        Assert.Equal(0, flow.BytesFromClient);
        Assert.True(flow.AsFilterable().HasError);
    }

    /// <summary>Completes with the first tunnel the proxy reports closed.</summary>
    private sealed class TunnelClosedSignal : ProxyAddon
    {
        public TaskCompletionSource<RelayedTunnel> Tunnel { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override ValueTask TunnelClosedAsync(RelayedTunnel tunnel, CancellationToken cancellationToken)
        {
            Tunnel.TrySetResult(tunnel);
            return default;
        }
    }

    /// <summary>Counts the bytes that cross a stream each way.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long BytesRead { get; private set; }

        public long BytesWritten { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken);
            BytesRead += n;
            return n;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken);
            BytesWritten += buffer.Length;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
