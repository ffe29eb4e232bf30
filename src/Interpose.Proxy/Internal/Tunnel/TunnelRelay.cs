using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Relays bytes both ways between two transports until both directions end, each direction on its own and
/// half-close propagated: when one peer stops sending, the other is told so, and the reverse direction goes on.
/// Used for TLS passthrough, raw TCP tunnels, server-first protocols and accepted upgrades (WebSocket).
/// </summary>
internal static class TunnelRelay
{
    /// <summary>Relays until both directions finish; bytes moved each way are returned, and kept in
    /// <paramref name="counts"/> as they move (so a relay that fails still tells how far it got).</summary>
    /// <param name="client">The client's side.</param>
    /// <param name="server">The server's side.</param>
    /// <param name="cancellationToken">Ends the relay.</param>
    /// <param name="counts">Where the bytes moved are counted as they move; a new one when null.</param>
    /// <param name="tap">Sees the bytes of both directions before they are written (a WebSocket's message reader); none when null.</param>
    /// <exception cref="IOException">A peer reset the connection (the other side is then closed by its owner).</exception>
    public static async Task<(long ClientToServer, long ServerToClient)> RunAsync(Transport client, Transport server, CancellationToken cancellationToken, Counts? counts = null, IRelayTap? tap = null)
    {
        counts ??= new Counts();

        // Relaying is both connections' steady state: their reads continue where the socket completes them.
        client.EndSetUp();
        server.EndSetUp();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var up = PumpAsync(client.Input, server, counts.ClientToServer, cts, tap, fromClient: true);
        var down = PumpAsync(server.Input, client, counts.ServerToClient, cts, tap, fromClient: false);
        await Task.WhenAll(up, down);
        return (await up, await down);
    }

    private static async Task<long> PumpAsync(PipeReader from, Transport to, StrongBox<long> total, CancellationTokenSource both, IRelayTap? tap, bool fromClient)
    {
        try
        {
            while (true)
            {
                var result = await from.ReadAsync(both.Token);
                var buffer = result.Buffer;

                // Observed before it is written, so that what one side sent is seen before the other side's answer to it.
                tap?.OnRelayed(fromClient, buffer);
                foreach (var segment in buffer)
                {
                    await to.Stream.WriteAsync(segment, both.Token);
                }

                // Each box is written by its own direction only, and read once both are over.
                total.Value += buffer.Length;
                from.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }

            // The source finished sending: pass the half-close on, keep the other direction open.
            await to.ShutdownWriteAsync();
            return total.Value;
        }
        catch
        {
            // One direction failed (reset, or cancelled): the other cannot meaningfully go on.
            await both.CancelAsync();
            throw;
        }
    }

    /// <summary>Bytes moved each way so far.</summary>
    public sealed class Counts
    {
        /// <summary>Bytes written to the server.</summary>
        public StrongBox<long> ClientToServer { get; } = new();

        /// <summary>Bytes written to the client.</summary>
        public StrongBox<long> ServerToClient { get; } = new();
    }
}
