using System.Buffers;
using Interpose.Core.Flows;

namespace Interpose.Proxy;

/// <summary>
/// Writes flows to a JSON Lines file (<see cref="FlowJson"/>): one flow per line, bodies in base64, appended in the
/// order received; what was flushed stays readable line by line if the process dies.
/// </summary>
public sealed class JsonLinesFlowSink : IFlowSink, IAsyncDisposable
{
    /// <summary>The file stream's buffer: 64 KiB, so a batch of small flows costs one write system call.</summary>
    private const int FileBufferBytes = 64 * 1024;

    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly ArrayBufferWriter<byte> _line = new(FileBufferBytes);

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
    }

    /// <summary>Flushes the stream.</summary>
    /// <param name="cancellationToken">Cancels the flush.</param>
    /// <returns>A task that completes when flushed.</returns>
    /// <exception cref="IOException">The write failed (a full disk).</exception>
    public async ValueTask FlushAsync(CancellationToken cancellationToken) => await _stream.FlushAsync(cancellationToken);

    /// <summary>Flushes and, when owned, closes the stream.</summary>
    /// <returns>A task that completes when closed.</returns>
    public async ValueTask DisposeAsync()
    {
        await _stream.FlushAsync();
        if (_ownsStream)
        {
            await _stream.DisposeAsync();
        }
    }
}
