using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>A byte-exact client: a socket to the proxy, optionally a CONNECT tunnel and TLS trusting the Interpose CA.</summary>
public static class RawClient
{
    public static Task<Stream> ConnectAsync(TestProxy proxy) => ConnectAsync(proxy.Port);

    /// <summary>A socket to a proxy listening on 127.0.0.1:<paramref name="proxyPort"/> (a TestProxy or an interpose process).</summary>
    public static async Task<Stream> ConnectAsync(int proxyPort)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", proxyPort);
        return new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>Opens a CONNECT tunnel to host:port through the proxy on 127.0.0.1:<paramref name="proxyPort"/>.</summary>
    public static async Task<Stream> TunnelAsync(int proxyPort, string host, int port)
    {
        var stream = await ConnectAsync(proxyPort);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"));
        var head = await RawOrigin.ReadHeadAsync(stream);
        if (!head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("CONNECT refused: " + head);
        }

        return stream;
    }

    /// <summary>Opens a CONNECT tunnel to host:port and, when <paramref name="tls"/>, TLS over it.</summary>
    public static async Task<Stream> TunnelAsync(TestProxy proxy, string host, int port, bool tls)
    {
        var stream = await TunnelAsync(proxy.Port, host, port);
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

    /// <summary>Reads until the peer closes (each read bounded by <see cref="BoundedRead.Limit"/>).</summary>
    /// <exception cref="IOException">The connection was reset; <see cref="ReadUntilClosedAsync"/> keeps what came before.</exception>
    public static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int n;
        while ((n = await stream.ReadBoundedAsync(chunk)) > 0)
        {
            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// Reads until the connection ends, by an orderly close or by a reset, and keeps every byte that came before the
    /// end: a peer that answers (a 503, say) and then closes with the request unread sends a reset after its answer,
    /// and that is an answer, not "closed without an answer".
    /// </summary>
    public static async Task<ConnectionEnd> ReadUntilClosedAsync(Stream stream)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        try
        {
            int n;
            while ((n = await stream.ReadBoundedAsync(chunk)) > 0)
            {
                buffer.Write(chunk, 0, n);
            }
        }
        catch (IOException)
        {
            return new ConnectionEnd(buffer.ToArray(), Reset: true);
        }

        return new ConnectionEnd(buffer.ToArray(), Reset: false);
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes (each read bounded by <see cref="BoundedRead.Limit"/>).</summary>
    public static async Task<string> ReadAsciiAsync(Stream stream, int count)
    {
        var bytes = new byte[count];
        await stream.ReadExactlyBoundedAsync(bytes);
        return Encoding.Latin1.GetString(bytes);
    }
}

/// <summary>How a connection ended for the client: what it received first, and whether the end was a reset.</summary>
public sealed record ConnectionEnd(byte[] Received, bool Reset)
{
    /// <summary>Nothing at all came back: the connection was closed or reset without an answer.</summary>
    public bool Unanswered => Received.Length == 0;

    /// <summary>The received bytes as Latin-1 text.</summary>
    public string Text => Encoding.Latin1.GetString(Received);
}
