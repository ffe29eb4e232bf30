namespace Interpose.Proxy.Internal;

/// <summary>Where requests inside a CONNECT tunnel go: the CONNECT authority, and the SNI the client asked for.</summary>
internal sealed record TunnelTarget(string Scheme, string Host, int Port, string? Sni)
{
    /// <summary>The origin connection a request of an HTTP/1.1 client to the tunnel's own target uses.</summary>
    public UpstreamKey OriginKey => new(Scheme, Host, Port, Sni);

    /// <summary>The same for a client that will speak HTTP/2 (the origin is offered h2 too).</summary>
    public UpstreamKey Http2OriginKey => new(Scheme, Host, Port, Sni, UpstreamProtocol.Http2OrHttp11);
}

/// <summary>An origin connection could not be opened; carries the described failure.</summary>
internal sealed class UpstreamUnavailableException(ExchangeError error) : Exception(error.Message, error.Exception)
{
    public ExchangeError Error { get; } = error;
}
