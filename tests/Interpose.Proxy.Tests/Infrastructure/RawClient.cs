using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>A byte-exact client: a socket to the proxy, optionally a CONNECT tunnel and TLS trusting the Interpose CA.</summary>
public static class RawClient
{
    public static async Task<Stream> ConnectAsync(TestProxy proxy)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", proxy.Port);
        return new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>Opens a CONNECT tunnel to host:port and, when <paramref name="tls"/>, TLS over it.</summary>
    public static async Task<Stream> TunnelAsync(TestProxy proxy, string host, int port, bool tls)
    {
        var stream = await ConnectAsync(proxy);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"));
        var head = await RawOrigin.ReadHeadAsync(stream);
        if (!head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("CONNECT refused: " + head);
        }

        if (!tls)
        {
            return stream;
        }

        var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = host,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            RemoteCertificateValidationCallback = (_, cert, _, errors) => TestProxy.ChainsTo(cert, proxy.Authority.Certificate, errors),
        });
        return ssl;
    }

    /// <summary>Reads until the peer closes.</summary>
    public static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes.</summary>
    public static async Task<string> ReadAsciiAsync(Stream stream, int count)
    {
        var bytes = new byte[count];
        await stream.ReadExactlyAsync(bytes);
        return Encoding.Latin1.GetString(bytes);
    }
}
