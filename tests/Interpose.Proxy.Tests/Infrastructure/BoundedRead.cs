using System.Net.Sockets;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>
/// The one bound on every raw read the tests make (client side and test origins): a read that gets neither a byte nor
/// the peer's close within <see cref="Limit"/> throws <see cref="TimeoutException"/>, so a proxy bug fails the test
/// that hit it instead of hanging the suite. A safety net, never a timing assertion: no test expects to reach it.
/// </summary>
public static class BoundedRead
{
    /// <summary>
    /// 30 s without progress: the slowest whole test takes about 12 s (trx of a full run), and the suite's hang guard
    /// (<c>--blame-hang-timeout 5min</c>) is far above it, so a stuck read is reported as itself first.
    /// </summary>
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    /// <summary><see cref="Stream.ReadAsync(Memory{byte}, CancellationToken)"/> bounded by <see cref="Limit"/>.</summary>
    public static async ValueTask<int> ReadBoundedAsync(this Stream stream, Memory<byte> buffer)
    {
        using var deadline = new CancellationTokenSource(Limit);
        try
        {
            return await stream.ReadAsync(buffer, deadline.Token);
        }
        catch (OperationCanceledException ex) when (deadline.IsCancellationRequested)
        {
            throw Stuck(ex);
        }
    }

    /// <summary><see cref="Socket.ReceiveAsync(Memory{byte}, SocketFlags, CancellationToken)"/> bounded by <see cref="Limit"/>.</summary>
    public static async ValueTask<int> ReceiveBoundedAsync(this Socket socket, Memory<byte> buffer)
    {
        using var deadline = new CancellationTokenSource(Limit);
        try
        {
            return await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
        }
        catch (OperationCanceledException ex) when (deadline.IsCancellationRequested)
        {
            throw Stuck(ex);
        }
    }

    /// <summary>Fills <paramref name="buffer"/>, each read bounded by <see cref="Limit"/>.</summary>
    /// <exception cref="EndOfStreamException">The peer closed first.</exception>
    public static async ValueTask ReadExactlyBoundedAsync(this Stream stream, Memory<byte> buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadBoundedAsync(buffer[read..]);
            if (n == 0)
            {
                throw new EndOfStreamException($"closed after {read} of {buffer.Length} bytes");
            }

            read += n;
        }
    }

    /// <summary>Reads and discards until the peer closes, each read bounded by <see cref="Limit"/>; returns the byte count.</summary>
    public static async Task<long> DrainBoundedAsync(this Stream stream, int bufferSize = 64 * 1024)
    {
        var buffer = new byte[bufferSize];
        long total = 0;
        int n;
        while ((n = await stream.ReadBoundedAsync(buffer)) > 0)
        {
            total += n;
        }

        return total;
    }

    private static TimeoutException Stuck(Exception inner) =>
        new($"a test read got no byte and no close in {Limit.TotalSeconds:0} s (BoundedRead.Limit)", inner);
}
