using System.Buffers;
using Interpose.Core.Flows;

namespace Interpose.Proxy;

/// <summary>
/// Writes flows to a JSON Lines file (<see cref="FlowJson"/>): one flow per line, bodies in base64, appended in the
/// order received; what was flushed stays readable line by line if the process dies. A flow counts as kept
/// (<see cref="KeptFlows"/>) once a flush after its write succeeded: lines still in the stream's buffer go with a failed
/// flush.
/// </summary>
public sealed class JsonLinesFlowSink : IFlowSink, IAsyncDisposable
{
    /// <summary>The file stream's buffer: 64 KiB, so a batch of small flows costs one write system call.</summary>
    private const int FileBufferBytes = 64 * 1024;

    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly ArrayBufferWriter<byte> _line = new(FileBufferBytes);

    /// <summary>Flows written to the stream, flushed or not; the writer's own count.</summary>
    private long _written;

    /// <summary>Flows written before the last flush that succeeded (<see cref="KeptFlows"/>).</summary>
    private long _kept;

    /// <summary>Creates (or truncates) <paramref name="path"/> and writes flows to it.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="IOException">The file cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">The file or its directory is not writable.</exception>
    public JsonLinesFlowSink(string path)
        : this(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, FileBufferBytes, FileOptions.Asynchronous), ownsStream: true)
    {
    }

    /// <summary>Writes flows to <paramref name="stream"/>.</summary>
    /// <param name="stream">A writable stream.</param>
    /// <param name="ownsStream">Whether disposing the sink disposes the stream.</param>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="stream"/> is not writable.</exception>
    public JsonLinesFlowSink(Stream stream, bool ownsStream = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("The stream is not writable.", nameof(stream));
        }

        _stream = stream;
        _ownsStream = ownsStream;
    }

    /// <summary>Writes one flow as one line.</summary>
    /// <param name="flow">The flow.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the line is written to the stream's buffer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    /// <exception cref="IOException">The write failed (a full disk).</exception>
    public async ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(flow);
        _line.ResetWrittenCount();
        FlowJson.WriteLine(_line, flow);
        await _stream.WriteAsync(_line.WrittenMemory, cancellationToken);
        _written++;
    }

    /// <summary>Flushes the stream; the flows written so far then count as kept (<see cref="KeptFlows"/>).</summary>
    /// <param name="cancellationToken">Cancels the flush.</param>
    /// <returns>A task that completes when flushed.</returns>
    /// <exception cref="IOException">The write failed (a full disk).</exception>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await _stream.FlushAsync(cancellationToken);
        Interlocked.Exchange(ref _kept, _written);
    }

    /// <summary>
    /// The flows written before the last flush that succeeded. A line may reach the file earlier, when the stream's buffer
    /// fills, but only a flush says the whole of every line before it got there; a flush that fails may have lost any of
    /// them, so a recorder counts them as dropped (FlowRecorder.DroppedFlows) rather than recorded.
    /// </summary>
    public long? KeptFlows => Interlocked.Read(ref _kept);

    /// <summary>Flushes and, when owned, closes the stream.</summary>
    /// <returns>A task that completes when closed.</returns>
    public async ValueTask DisposeAsync()
    {
        await _stream.FlushAsync();
        Interlocked.Exchange(ref _kept, _written);
        if (_ownsStream)
        {
            await _stream.DisposeAsync();
        }
    }
}
