using System.Net;
using System.Net.Sockets;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>
/// A fact that needs the IPv6 loopback: reported as skipped, saying why, on a machine where [::1] cannot be bound
/// (IPv6 disabled), instead of passing without having run.
/// </summary>
public sealed class Ipv6FactAttribute : FactAttribute
{
    public Ipv6FactAttribute()
    {
        if (!Ipv6LoopbackAvailable())
        {
            Skip = "IPv6 loopback [::1] is not available on this machine";
        }
    }

    private static bool Ipv6LoopbackAvailable()
    {
        if (!Socket.OSSupportsIPv6)
        {
            return false;
        }

        try
        {
            using var probe = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
