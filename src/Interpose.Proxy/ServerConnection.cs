using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Proxy;

/// <summary>A connection from the proxy to an origin server.</summary>
public sealed class ServerConnection
{
    internal ServerConnection(long id, string host, int port, bool tls, string? sni)
    {
        Id = id;
        Host = host;
        Port = port;
        IsTls = tls;
        Sni = sni;
    }

    /// <summary>A number unique within this proxy instance.</summary>
    public long Id { get; }

    /// <summary>The host name or IP literal connected to.</summary>
    public string Host { get; }

    /// <summary>The port connected to.</summary>
    public int Port { get; }

    /// <summary>Whether the connection uses TLS.</summary>
    public bool IsTls { get; }

    /// <summary>The server name sent in the proxy's ClientHello.</summary>
    public string? Sni { get; }

    /// <summary>The address the proxy connected to, once connected.</summary>
    public EndPoint? RemoteEndPoint { get; internal set; }

    /// <summary>The negotiated TLS version, once the handshake completed.</summary>
    public SslProtocols? TlsVersion { get; internal set; }

    /// <summary>The negotiated cipher suite, once the handshake completed.</summary>
    public TlsCipherSuite? CipherSuite { get; internal set; }

    /// <summary>The negotiated ALPN protocol, once the handshake completed; null when none was negotiated.</summary>
    public string? Alpn { get; internal set; }

    /// <summary>The certificate the origin presented.</summary>
    public X509Certificate2? Certificate { get; internal set; }

    /// <summary>What a <see cref="FlowRecorder"/> derived from this connection for its flows (address, id, TLS), made
    /// once per connection instead of once per exchange.</summary>
    internal object? RecorderFacts { get; set; }

    /// <summary>host:port, for logs.</summary>
    /// <returns>The authority.</returns>
    public override string ToString() => Host + ":" + Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
