using System.Buffers;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Where heads and body framing are serialized before a write: an <see cref="IBufferWriter{T}"/> whose array is rented
/// from the connection's <see cref="ConnectionBuffers"/> on first use and given back by <see cref="Release"/>, which
/// the connection calls before it waits for its next request, so that an idle connection holds no scratch array.
/// </summary>
/// <param name="buffers">Where the array comes from; null for an owner that keeps its array (an HTTP/2 stream's small writer).</param>
/// <param name="initialSize">The first array's size; it grows, doubling, for a larger head.</param>
internal sealed class ScratchBuffer(ConnectionBuffers? buffers, int initialSize) : IBufferWriter<byte>
{
    private byte[]? _buffer;
    private int _written;

    /// <summary>The bytes written since the last <see cref="ResetWrittenCount"/>.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public int WrittenCount => _written;

    /// <summary>Bytes that can be written without growing.</summary>
    public int FreeCapacity => (_buffer?.Length ?? initialSize) - _written;

    public void ResetWrittenCount() => _written = 0;

    /// <summary>Gives the array back (the next write rents one again); what was written is gone.</summary>
    public void Release()
    {
        _written = 0;
        if (buffers is not null && _buffer is { } buffer)
        {
            _buffer = null;
            buffers.ReturnArray(buffer);
        }
    }

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_buffer is null || _written + count > _buffer.Length)
        {
            throw new InvalidOperationException("advanced past the buffer");
        }

        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (_buffer is not null && needed <= _buffer.Length)
        {
            return;
        }

        var size = Math.Max(needed, Math.Max(initialSize, (_buffer?.Length ?? 0) * 2));
        var grown = buffers?.RentArray(size) ?? new byte[size];
        if (_buffer is { } old)
        {
            old.AsSpan(0, _written).CopyTo(grown);
            if (buffers is not null)
            {
                buffers.ReturnArray(old);
            }
        }

        _buffer = grown;
    }
}
