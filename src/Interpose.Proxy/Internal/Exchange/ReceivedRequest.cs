using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>How a request arrived, as the server connection read it: what the pipeline needs beyond the request itself.</summary>
/// <param name="Framing">The body's framing as received (RFC 9112 §6.3).</param>
/// <param name="ClientVersion">The client's HTTP version (hooks may change the request's, not this).</param>
/// <param name="KeepAlive">Whether the client connection may carry another request after this one (RFC 9112 §9.3).</param>
/// <param name="Upgrade">The client asked to switch protocols (RFC 9110 §7.8).</param>
/// <param name="Tunnel">The CONNECT tunnel it came through, if any.</param>
internal readonly record struct ReceivedRequest(BodyFraming Framing, Version ClientVersion, bool KeepAlive, bool Upgrade, TunnelTarget? Tunnel)
{
    /// <summary>A body is still to be read from the client (anything but none or an empty Content-Length body).</summary>
    public bool BodyPending => Framing.Kind != BodyKind.None && Framing != new BodyFraming(BodyKind.ContentLength, 0);
}
