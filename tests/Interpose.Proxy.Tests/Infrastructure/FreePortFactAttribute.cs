using System.Net;
using System.Net.Sockets;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>
/// A fact that needs a fixed port on 127.0.0.1 (a default address under test): reported as skipped, saying why, when
/// something else on the machine already listens there. Checked when the test is discovered; another process can
/// still take the port before the test runs, and the test then fails saying the port was in use.
/// </summary>
public sealed class FreePortFactAttribute : FactAttribute
{
    public FreePortFactAttribute(int port)
    {
        try
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
        }
        catch (SocketException ex)
        {
            Skip = $"127.0.0.1:{port} is taken by another program on this machine ({ex.SocketErrorCode})";
        }
    }
}
