using System.IO.Pipelines;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Relays bytes both ways between two transports until both directions end, each direction on its own and
/// half-close propagated: when one peer stops sending, the other is told so, and the reverse direction goes on.
/// Used for TLS passthrough, raw TCP tunnels, server-first protocols and accepted upgrades (WebSocket).
/// </summary>
internal static class TunnelRelay
{
    /// <summary>Relays until both directions finish; bytes moved each way are returned.</summary>
    /// <exception cref="IOException">A peer reset the connection (the other side is then closed by its owner).</exception>
    public static async Task<(long ClientToServer, long ServerToClient)> RunAsync(Transport client, Transport server, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var up = PumpAsync(client.Input, server, cts);
        var down = PumpAsync(server.Input, client, cts);
        await Task.WhenAll(up, down);
        return (await up, await down);
    }

    private static async Task<long> PumpAsync(PipeReader from, Transport to, CancellationTokenSource both)
    {
        long total = 0;
        try
        {
            while (true)
            {
                var result = await from.ReadAsync(both.Token);
                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    await to.Stream.WriteAsync(segment, both.Token);
                }

                total += buffer.Length;
                from.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }

            // The source finished sending: pass the half-close on, keep the other direction open.
            await to.ShutdownWriteAsync();
            return total;
        }
        catch
        {
            // One direction failed (reset, or cancelled): the other cannot meaningfully go on.
            await both.CancelAsync();
            throw;
        }
    }
}
