using System.Globalization;

namespace Interpose.Core.Flows;

/// <summary>A network address of a flow: a host (IP literal or name) and a port.</summary>
/// <param name="Host">The IP address or host name, without brackets for IPv6.</param>
/// <param name="Port">The port.</param>
public sealed record FlowEndpoint(string Host, int Port)
{
    /// <summary>mitmproxy's form, <c>host:port</c> with IPv6 unbracketed (<c>::1:5000</c>), as the filters read it.</summary>
    /// <returns>The address as text.</returns>
    public override string ToString() => Host + ":" + Port.ToString(CultureInfo.InvariantCulture);
}
