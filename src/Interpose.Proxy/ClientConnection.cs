using System.Net;
using System.Net.Security;
using System.Security.Authentication;

namespace Interpose.Proxy;

/// <summary>A connection from a client (browser, app, curl) to the proxy.</summary>
public sealed class ClientConnection
{
    internal ClientConnection(long id, EndPoint? remote, EndPoint? local)
    {
        Id = id;
        RemoteEndPoint = remote;
        LocalEndPoint = local;
    }

    /// <summary>A number unique within this proxy instance.</summary>
    public long Id { get; }

    /// <summary>The client's address.</summary>
    public EndPoint? RemoteEndPoint { get; }

    /// <summary>The proxy's listening address the client reached.</summary>
    public EndPoint? LocalEndPoint { get; }

    /// <summary>The authority the client asked to CONNECT to, if it tunnelled.</summary>
    public string? ConnectAuthority { get; internal set; }

    /// <summary>The server name the client sent in its TLS ClientHello (SNI), if any.</summary>
    public string? Sni { get; internal set; }

    /// <summary>The ALPN protocols the client offered.</summary>
    public IReadOnlyList<string> OfferedAlpn { get; internal set; } = [];

    /// <summary>The negotiated TLS version with the client, when intercepted.</summary>
    public SslProtocols? TlsVersion { get; internal set; }

    /// <summary>The negotiated cipher suite with the client, when intercepted.</summary>
    public TlsCipherSuite? CipherSuite { get; internal set; }

    /// <summary>The negotiated ALPN protocol with the client, when intercepted and the client offered one; else null.</summary>
    public string? Alpn { get; internal set; }

    /// <summary>What a <see cref="FlowRecorder"/> derived from this connection for its flows (address, id, TLS), made
    /// once per connection instead of once per exchange.</summary>
    internal object? RecorderFacts { get; set; }

    /// <summary>A short description for logs: the client's address.</summary>
    /// <returns>The remote end point as text.</returns>
    public override string ToString() => RemoteEndPoint?.ToString() ?? "?";
}
