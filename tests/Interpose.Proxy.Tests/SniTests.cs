using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Interpose.Core.Tests.Corpus;
using Interpose.Core.Tls;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>Server names as clients really send them.</summary>
public sealed class SniTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_client_sending_host_and_port_as_SNI_is_intercepted_with_a_certificate_for_the_host()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, proxy.Port));
        await using var tunnel = new NetworkStream(socket, ownsSocket: false);
        await tunnel.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT localhost:{origin.Port} HTTP/1.1\r\nHost: localhost:{origin.Port}\r\n\r\n"));
        var buffer = new byte[4096];
        var read = 0;
        while (read < 4 || !buffer.AsSpan(0, read).EndsWith("\r\n\r\n"u8))
        {
            var n = await tunnel.ReadBoundedAsync(buffer.AsMemory(read));
            Assert.NotEqual(0, n);
            read += n;
        }

        X509Certificate2? presented = null;
        await using var ssl = new SslStream(tunnel);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            // What Go's http.Transport sends when tls.Config.ServerName is set from req.Host (hey does this).
            TargetHost = $"localhost:{origin.Port}",
            // The name check is the test's own (below): "localhost:port" never matches a certificate name.
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                presented = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                return TestProxy.ChainsTo(certificate, proxy.Authority.Certificate, errors & ~SslPolicyErrors.RemoteCertificateNameMismatch);
            },
        });
        await ssl.WriteAsync(Encoding.ASCII.GetBytes($"GET /hello HTTP/1.1\r\nHost: localhost:{origin.Port}\r\nConnection: close\r\n\r\n"));
        using var reader = new StreamReader(ssl);
        var response = await reader.ReadToEndAsync();

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Contains("hello from origin", response, StringComparison.Ordinal);
        Assert.True(presented!.MatchesHostname("localhost"));
    }

    [Fact]
    public async Task A_hello_the_reader_refuses_still_goes_through_the_hooks_and_is_never_relayed_raw()
    {
        await using var origin = await Origins.StartTlsAsync();
        var logs = new LogCollector();
        var seen = new ConcurrentQueue<TlsClientHelloContext>();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Hooks
        {
            OnClientHello = c =>
            {
                seen.Enqueue(c);
                c.Decision = TlsDecision.Reject;
            },
        }), logs: logs);

        // A real hello whose server name then gets a space ("localhost1" becomes "local host", the lengths unchanged): the
        // reader refuses any byte outside 0x21-0x7E, OpenSSL servers take it (openssl s_client -servername 'local host').
        var hello = await TlsHelloCapture.CaptureAsync("localhost1", [SslApplicationProtocol.Http11]);
        "local host"u8.CopyTo(hello.AsSpan(hello.AsSpan().IndexOf("localhost1"u8)));
        Assert.Equal(ClientHelloParseStatus.Invalid, ClientHelloReader.TryRead(new ReadOnlySequence<byte>(hello), out _));
        await using var tunnel = await RawClient.TunnelAsync(proxy.Port, "localhost", origin.Port);
        await tunnel.WriteAsync(hello);
        var answer = await RawClient.ReadUntilClosedAsync(tunnel);

        // Relayed raw, the origin's ServerHello and certificate would come back, past the hook's Reject.
        Assert.True(answer.Unanswered, "the client got bytes: " + Convert.ToHexString(answer.Received));
        var entry = await logs.WaitForAsync(127);
        var context = Assert.Single(seen);
        Assert.False(context.ClientHello.IsParsed);
        Assert.Null(context.ClientHello.ServerName);
        Assert.Equal("localhost", context.Host);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains($"the TLS ClientHello in the tunnel to localhost:{origin.Port} cannot be read", entry.Message, StringComparison.Ordinal);
    }
}
