using Interpose.Core.Http2;

namespace Interpose.Proxy.Internal;

/// <summary>What an accepted <c>Upgrade: h2c</c> (RFC 7540 §3.2) hands the HTTP/2 connection.</summary>
/// <param name="Request">The upgrade request as stream 1's HTTP/2 request.</param>
/// <param name="Settings">The client's HTTP2-Settings, applied as its first SETTINGS (RFC 7540 §3.2.1).</param>
/// <param name="Body">The request's whole body (RFC 7540 §3.2: sent before the switch), at most
/// <see cref="H2cUpgrade.MaxBodyBytes"/>.</param>
internal sealed record H2cUpgradeRequest(Http2RequestFields Request, Http2Setting[] Settings, byte[] Body);
