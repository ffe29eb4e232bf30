namespace Interpose.Proxy;

/// <summary>When the proxy opens the origin connection of an intercepted TLS tunnel.</summary>
public enum ConnectionStrategy
{
    /// <summary>
    /// When the first request needs it, after the request hooks: a request a hook answers, kills or reroutes never
    /// touches the origin, and server hooks run after the request hooks. The library's default.
    /// </summary>
    Lazy,

    /// <summary>
    /// As soon as the client's ClientHello names the origin, while the client's handshake is completed: the origin's
    /// TLS set-up overlaps the client's, so the first request through a new tunnel saves one connection set-up
    /// (mitmproxy's default, and the <c>interpose run</c> default). Earlier still, when the CONNECT arrives and while the
    /// client prepares its ClientHello, the leaf certificate for the CONNECT host is forged and the TCP connection to the
    /// CONNECT target opened (unless the pool holds one for it); the origin's TLS waits for the ClientHello, whose SNI
    /// and ALPN offer it follows. The origin sees a connection even when a hook then answers, kills or reroutes the
    /// request, rejects the tunnel, or the client leaves without one (the connection is then closed
    /// when the client's connection ends, or at once when nothing can use it), and the server hooks run during the
    /// client handshake, before the request hooks.
    /// </summary>
    Eager,
}
