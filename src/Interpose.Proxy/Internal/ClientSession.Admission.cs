using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>The checks a request head must pass before anything else happens with it: no hook, no origin, no 200.</summary>
internal sealed partial class ClientSession
{
    private static readonly ReadOnlyMemory<byte> ConnectPortForbidden = FixedResponses.Create(403, "CONNECT to this port is not allowed");

    /// <summary>
    /// Proxy authentication, then the CONNECT port allow-list. Returns false when the request was answered (407/403)
    /// and the connection must close. Requests inside a CONNECT tunnel were admitted with the CONNECT.
    /// </summary>
    private async ValueTask<bool> AdmitAsync(HttpRequestHead head)
    {
        // RFC 9110 §11.7.1: a proxy requiring credentials answers 407 with a Proxy-Authenticate challenge. It closes
        // afterwards: the request body, if any, was not read, and a client retrying with credentials reconnects anyway.
        if (!_rt.Authenticator.IsAuthorized(head))
        {
            ProxyLog.ProxyAuthenticationFailed(_rt.Logger, _info, head.Method);
            await SendFixedAsync(ProxyAuthenticator.Challenge);
            return false;
        }

        if (head.Method == "CONNECT" && _rt.Options.AllowedConnectPorts.Count > 0)
        {
            RequestTarget target;
            try
            {
                target = RequestTargetParser.Parse(head.Method, head.Target);
            }
            catch (HttpProtocolException)
            {
                // HandleConnectAsync answers a malformed authority with 400.
                return true;
            }

            // RFC 9110 §9.3.6: a proxy MAY restrict CONNECT to a limited set of ports (e.g. 443) to avoid being a relay
            // into arbitrary services; 403 says the request was understood and refused.
            if (!_rt.Options.AllowedConnectPorts.Contains(target.Port))
            {
                ProxyLog.ConnectPortRefused(_rt.Logger, _info, target.Port);
                await SendFixedAsync(ConnectPortForbidden);
                return false;
            }
        }

        return true;
    }

    private async ValueTask SendFixedAsync(ReadOnlyMemory<byte> response)
    {
        try
        {
            _responseStarted = true;
            await _client.Stream.WriteAsync(response, _rt.Aborted);
        }
        catch (Exception ex) when (IsConnectionFailure(ex))
        {
            ProxyLog.ClientConnectionEnded(_rt.Logger, _info, ExchangePhase.ClientResponse, ex.Message);
        }
    }
}
