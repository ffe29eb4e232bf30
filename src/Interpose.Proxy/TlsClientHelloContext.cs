using System.Net.Security;
using Interpose.Core.Tls;

namespace Interpose.Proxy;

/// <summary>
/// A TLS ClientHello arriving through a CONNECT tunnel. A hook reads the SNI and ALPN, and decides between
/// interception, passthrough and rejection; it may also supply the certificate to present.
/// </summary>
public sealed class TlsClientHelloContext
{
    internal TlsClientHelloContext(ClientConnection client, ClientHello hello, string host, int port, TlsDecision decision)
    {
        Client = client;
        ClientHello = hello;
        Host = host;
        Port = port;
        Decision = decision;
    }

    /// <summary>The client connection.</summary>
    public ClientConnection Client { get; }

    /// <summary>The parsed ClientHello (SNI, ALPN, cipher suites, versions).</summary>
    public ClientHello ClientHello { get; }

    /// <summary>The SNI, or the CONNECT host when the hello has none: the name the forged certificate is for.</summary>
    public string Host { get; }

    /// <summary>The CONNECT port.</summary>
    public int Port { get; }

    /// <summary>The decision; starts as the proxy's own (passthrough for <see cref="ProxyOptions.IgnoreHosts"/>).</summary>
    public TlsDecision Decision { get; set; }

    /// <summary>A certificate to present instead of the forged one (optional).</summary>
    public SslStreamCertificateContext? Certificate { get; set; }
}
