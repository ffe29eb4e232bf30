using System.Net.Sockets;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Reading the request body from the client failed on the wire (a reset, a broken connection): the exchange fails in
/// the client-request phase, not as the origin failing, and nobody is answered, as the client is gone. A clean close
/// in the middle of the body is a <see cref="ClientBodyEndedException"/> instead (a half-closed client may still read).
/// </summary>
internal sealed class ClientConnectionFailedException(Exception inner)
    : IOException("the client's connection failed in the middle of the request body: " + inner.Message, inner)
{
    /// <summary>Whether <paramref name="exception"/>, thrown by a read of the client's connection, is that connection failing.</summary>
    public static bool IsReadFailure(Exception exception) => exception is IOException or SocketException;
}
