using System.Buffers;
using System.Net.Sockets;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The one rule for closing a client connection with bytes of its request unread (RFC 9112 §9.6, "close the connection
/// in stages"), shared by an HTTP/1.1 connection that answered before reading its request body and by the proxy's 503
/// refusal of a connection past its limits: half-close after the answer, then read and discard what the client still
/// sends until it closes, for at most <see cref="Timeout"/> and <see cref="MaxBytes"/>, then close. Closed at once with
/// bytes unread, the kernel sends a reset, which can destroy the answer before the client read it.
/// </summary>
internal static class LingeringClose
{
    /// <summary>
    /// How long a lingering close goes on reading: 2 s, Apache's wait per read (SECONDS_TO_LINGER): time for an answer
    /// already on its way to be read; bounded because the connection holds its place meanwhile and the client may never
    /// stop sending.
    /// </summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The most a lingering close discards: 64 MiB, far more than a client sends in <see cref="Timeout"/> while its
    /// answer crosses a network (25 MB at 100 Mbit/s); only a client on a fast link still sending is cut short, and
    /// reading costs CPU, not memory.
    /// </summary>
    public const long MaxBytes = 64 * 1024 * 1024;

    /// <summary>Bytes read (and discarded) at a time: one small pooled array per lingering connection.</summary>
    private const int ReadBytes = 4096;

    /// <summary>
    /// Half-closes <paramref name="socket"/> (the answer, already written, is followed by a FIN), then reads and discards
    /// until the client closes or <see cref="MaxBytes"/> were read. The caller bounds the time with
    /// <paramref name="cancellationToken"/> (<see cref="Timeout"/>) and closes the socket.
    /// </summary>
    /// <remarks>
    /// Reads the socket itself: the bytes are discarded, so TLS need not decrypt them, and nothing depends on the state
    /// of a pipe or a stream after an exchange that may have failed in the middle of a read.
    /// </remarks>
    /// <exception cref="SocketException">The client reset the connection.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The socket was closed meanwhile.</exception>
    public static async ValueTask DiscardAsync(Socket socket, CancellationToken cancellationToken)
    {
        var discard = ArrayPool<byte>.Shared.Rent(ReadBytes);
        try
        {
            socket.Shutdown(SocketShutdown.Send);
            long discarded = 0;
            int read;
            while (discarded < MaxBytes && (read = await socket.ReceiveAsync(discard, SocketFlags.None, cancellationToken)) > 0)
            {
                discarded += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(discard);
        }
    }
}
