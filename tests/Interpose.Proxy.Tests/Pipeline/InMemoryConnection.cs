using System.IO.Pipelines;
using Interpose.Proxy.Internal;

namespace Interpose.Proxy.Tests.Pipeline;

/// <summary>
/// A connection in memory: two pipes, one per direction, and a stream for each end. No socket, no port, no kernel:
/// what one end writes, the other reads; disposing an end's stream is its close (the peer then reads end of stream).
/// </summary>
public sealed class InMemoryConnection
{
    private readonly Pipe _toServer = new();
    private readonly Pipe _toClient = new();

    public InMemoryConnection()
    {
        Client = new DuplexStream(_toClient.Reader, _toServer.Writer);
        Server = new DuplexStream(_toServer.Reader, _toClient.Writer);
    }

    /// <summary>The end that connected (reads what the server wrote).</summary>
    public Stream Client { get; }

    /// <summary>The end that accepted (reads what the client wrote).</summary>
    public Stream Server { get; }

    /// <summary>Reads one pipe and writes the other, async only, as the proxy's network streams are used.</summary>
    private sealed class DuplexStream(PipeReader input, PipeWriter output) : NetworkReadStream(output.AsStream())
    {
        private readonly Stream _read = input.AsStream();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            _read.ReadAsync(buffer, cancellationToken);

        public override async ValueTask DisposeAsync()
        {
            await output.CompleteAsync();
            await input.CompleteAsync();
            await base.DisposeAsync();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                output.Complete();
                input.Complete();
            }

            base.Dispose(disposing);
        }
    }
}
