namespace Interpose.Proxy;

/// <summary>The steps of an exchange, as named in errors and logs.</summary>
public enum ExchangePhase
{
    /// <summary>Reading the request from the client.</summary>
    ClientRequest,

    /// <summary>Resolving the origin's name.</summary>
    Dns,

    /// <summary>Opening the TCP connection to the origin.</summary>
    Connect,

    /// <summary>The TLS handshake with the origin.</summary>
    Tls,

    /// <summary>Sending the request to the origin.</summary>
    Request,

    /// <summary>Reading the response from the origin.</summary>
    Response,

    /// <summary>Writing the response to the client.</summary>
    ClientResponse,

    /// <summary>An addon's hook failed.</summary>
    Addon,
}
