using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The HTTP proxy front end: what a client connection of an HTTP proxy listener asks for, outside any tunnel. Each
/// request head passes its checks before anything else happens with it (no hook, no origin, no 200); CONNECT turns
/// the connection into a tunnel (absolute-form requests are served by the <see cref="Http1ServerConnection"/> itself).
/// SOCKS5 and reverse-proxy front ends will sit beside it, one per listener.
/// </summary>
internal sealed class HttpProxyFrontend(ClientFlow flow)
{
    private static readonly ReadOnlyMemory<byte> ConnectPortForbidden = FixedResponses.Create(403, "CONNECT to this port is not allowed");

    /// <summary>
    /// Proxy authentication, then the CONNECT port allow-list. Returns false when the request was answered (407/403)
    /// and the connection must close. Requests inside a CONNECT tunnel were admitted with the CONNECT.
    /// </summary>
    public async ValueTask<bool> AdmitAsync(HttpRequestHead head, Http1ServerConnection server)
    {
        var rt = flow.Runtime;
        // RFC 9110 §11.7.1: a proxy requiring credentials answers 407 with a Proxy-Authenticate challenge. It closes
        // afterwards: the request body, if any, was not read, and a client retrying with credentials reconnects anyway.
        if (!rt.Authenticator.IsAuthorized(head))
        {
            ProxyLog.ProxyAuthenticationFailed(rt.Logger, flow.Info, head.Method);
            await server.SendFixedAsync(ProxyAuthenticator.Challenge);
            return false;
        }

        if (rt.Authenticator.IsEnabled)
        {
            // RFC 9110 §11.7.2: the credentials were for this proxy, which consumed them. Removed now, before the
            // exchange is built, not only on the way out: hooks, the intercept UI and recorded flows never see them,
            // also for requests a hook answers itself or that fail before reaching an origin.
            head.Headers.Remove("Proxy-Authorization");
        }

        if (head.Method == "CONNECT" && rt.Options.AllowedConnectPorts.Count > 0)
        {
            RequestTarget target;
            try
            {
                target = RequestTargetParser.Parse(head.Method, head.Target);
            }
            catch (HttpProtocolException)
            {
                // TunnelLayer.RunAsync answers a malformed authority with 400.
                return true;
            }

            // RFC 9110 §9.3.6: a proxy MAY restrict CONNECT to a limited set of ports (e.g. 443) to avoid being a relay
            // into arbitrary services; 403 says the request was understood and refused.
            if (!rt.Options.AllowedConnectPorts.Contains(target.Port))
            {
                ProxyLog.ConnectPortRefused(rt.Logger, flow.Info, target.Port);
                await server.SendFixedAsync(ConnectPortForbidden);
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Serves the client connection: requests outside any tunnel on the proxy's own HTTP/1.1 connection until it closes
    /// or a CONNECT is admitted; then the tunnel layer takes the connection (RFC 9110 §9.3.6).
    /// </summary>
    public async Task RunAsync()
    {
        if (await ServeOutsideTunnelAsync() is { } connect)
        {
            await new TunnelLayer(flow).RunAsync(connect);
        }
    }

    // NOTE: a method of its own, so that the proxy's HTTP/1.1 connection that read the CONNECT (its pipeline, chunked
    // decoder, parser state) is disposed and unreachable once the tunnel starts: a tunnel can live for hours, and this
    // connection will not read again. Kept in a local of RunAsync's state machine it would live as long (issue 19).
    private async Task<HttpRequestHead?> ServeOutsideTunnelAsync()
    {
        using var server = new Http1ServerConnection(flow, tunnel: null, this);
        return await server.ServeAsync();
    }
}
