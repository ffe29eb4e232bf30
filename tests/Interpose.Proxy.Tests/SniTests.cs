using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
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
}
