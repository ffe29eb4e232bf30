namespace Interpose.Proxy.Internal;

/// <summary>Where requests inside a CONNECT tunnel go: the CONNECT authority, and the SNI the client asked for.</summary>
internal sealed record TunnelTarget(string Scheme, string Host, int Port, string? Sni)
{
    /// <summary>The origin connection a request to the tunnel's own target uses.</summary>
    public UpstreamKey OriginKey => new(Scheme, Host, Port, Sni);
}

/// <summary>An origin connection could not be opened; carries the described failure.</summary>
internal sealed class UpstreamUnavailableException(ExchangeError error) : Exception(error.Message, error.Exception)
{
    public ExchangeError Error { get; } = error;
}
