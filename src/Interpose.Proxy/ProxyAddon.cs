namespace Interpose.Proxy;

/// <summary>
/// The base of an addon: override the hooks you need. Addons run in the order they were added, each hook awaited
/// before the next addon's, like middleware. A hook that throws fails that one exchange (the client gets a 502
/// naming the addon) and is logged; it never fails the proxy or other exchanges.
/// </summary>
/// <remarks>
/// Order of HTTP hooks for one exchange: <see cref="RequestHeadersAsync"/> (body not read yet: set
/// <see cref="HttpMessage.BufferBody"/> or <see cref="HttpMessage.StreamTransform"/>), <see cref="RequestAsync"/>
/// (body present if buffered), then unless a hook answered: <see cref="ServerConnectingAsync"/> /
/// <see cref="ServerConnectedAsync"/> for a new origin connection, <see cref="ResponseHeadersAsync"/>,
/// <see cref="ResponseAsync"/>; <see cref="ErrorAsync"/> on failure; <see cref="DoneAsync"/> always, last.
/// Every hook gets a token that is cancelled when the client goes away or the proxy shuts down.
/// A hook that calls <see cref="HttpExchange.Respond"/> ends the request side: the origin is not contacted and
/// <see cref="RequestAsync"/> is skipped if it has not run yet, but the other addons' hooks of the same step still
/// run, and <see cref="ResponseAsync"/> runs for the answer (so a response-editing addon also sees synthetic answers).
/// </remarks>
public abstract class ProxyAddon
{
    /// <summary>The name used in logs and error responses; the type name by default.</summary>
    public virtual string Name => GetType().Name;

    /// <summary>A client connected to the proxy.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="cancellationToken">Cancelled on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask ClientConnectedAsync(ClientConnection client, CancellationToken cancellationToken) => default;

    /// <summary>A client connection closed.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="cancellationToken">Cancelled on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask ClientDisconnectedAsync(ClientConnection client, CancellationToken cancellationToken) => default;

    /// <summary>A TLS ClientHello arrived in a tunnel: decide interception, passthrough or rejection.</summary>
    /// <param name="context">The hello and the decision to make.</param>
    /// <param name="cancellationToken">Cancelled when the client goes away or on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask TlsClientHelloAsync(TlsClientHelloContext context, CancellationToken cancellationToken) => default;

    /// <summary>A tunnel relayed as bytes (TLS passed through, or a protocol that is neither TLS nor HTTP) ended, in
    /// order or by a failure; its endpoints, byte counts, duration and error are final. Upgraded connections (101) are
    /// not reported here: their exchange is.</summary>
    /// <param name="tunnel">The tunnel.</param>
    /// <param name="cancellationToken">Cancelled on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask TunnelClosedAsync(RelayedTunnel tunnel, CancellationToken cancellationToken) => default;

    /// <summary>The proxy is about to open a new connection to an origin.</summary>
    /// <param name="server">The connection about to be opened.</param>
    /// <param name="cancellationToken">Cancelled when the exchange is abandoned.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask ServerConnectingAsync(ServerConnection server, CancellationToken cancellationToken) => default;

    /// <summary>A new connection to an origin is open (TLS done, if any).</summary>
    /// <param name="server">The connection.</param>
    /// <param name="cancellationToken">Cancelled when the exchange is abandoned.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask ServerConnectedAsync(ServerConnection server, CancellationToken cancellationToken) => default;

    /// <summary>Opening a connection to an origin failed (DNS, connect or TLS).</summary>
    /// <param name="server">The connection that could not be opened.</param>
    /// <param name="failure">Why.</param>
    /// <param name="cancellationToken">Cancelled on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask ServerConnectFailedAsync(ServerConnection server, ExchangeError failure, CancellationToken cancellationToken) => default;

    /// <summary>A connection to an origin closed.</summary>
    /// <param name="server">The connection.</param>
    /// <param name="cancellationToken">Cancelled on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask ServerDisconnectedAsync(ServerConnection server, CancellationToken cancellationToken) => default;

    /// <summary>The request head arrived; the body has not been read.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Cancelled when the client goes away or on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken) => default;

    /// <summary>The request is about to be sent (its body is present when buffered).</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Cancelled when the client goes away or on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken) => default;

    /// <summary>The response head arrived; the body has not been read.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Cancelled when the client goes away or on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken) => default;

    /// <summary>The response is about to be returned (its body is present when buffered).</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Cancelled when the client goes away or on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask ResponseAsync(HttpExchange exchange, CancellationToken cancellationToken) => default;

    /// <summary>The exchange failed; <see cref="HttpExchange.Error"/> says why.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Cancelled on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask ErrorAsync(HttpExchange exchange, CancellationToken cancellationToken) => default;

    /// <summary>The exchange is over, successful or not: the last hook it sees.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Cancelled on shutdown.</param>
    /// <returns>A task that completes when the hook is done.</returns>
    public virtual ValueTask DoneAsync(HttpExchange exchange, CancellationToken cancellationToken) => default;
}
