using System.Buffers;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Where one connection's pooled buffers come from (its read pipes' segments and its scratch buffers), counting how
/// many it holds now: an idle keep-alive connection must hold none (issue 19), and <see cref="Rented"/> shows it.
/// The arrays come from <see cref="ArrayPool{T}.Shared"/>; the owner objects the pipes receive are kept for reuse, so
/// renting allocates nothing once the connection has run.
/// </summary>
internal sealed class ConnectionBuffers : MemoryPool<byte>
{
    /// <summary>Owner objects kept for reuse: a read pipe holds one or two segments, a bulk body a few more.</summary>
    private const int MaxCachedBlocks = 8;

    private readonly Lock _lock = new();
    private readonly Stack<Block> _blocks = new();
    private int _rented;

    /// <summary>Buffers (pipe segments and scratch arrays) this connection holds now.</summary>
    public int Rented => Volatile.Read(ref _rented);

    public override int MaxBufferSize => Array.MaxLength;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        Block? block = null;
        lock (_lock)
        {
            _blocks.TryPop(out block);
        }

        block ??= new Block(this);
        block.Array = RentArray(minBufferSize <= 0 ? 4096 : minBufferSize);
        return block;
    }

    /// <summary>An array of at least <paramref name="minimumLength"/> bytes, counted until <see cref="ReturnArray"/>.</summary>
    public byte[] RentArray(int minimumLength)
    {
        Interlocked.Increment(ref _rented);
        return ArrayPool<byte>.Shared.Rent(minimumLength);
    }

    public void ReturnArray(byte[] array)
    {
        ArrayPool<byte>.Shared.Return(array);
        Interlocked.Decrement(ref _rented);
    }

    protected override void Dispose(bool disposing)
    {
        // Nothing of its own to free: every array goes back to the shared pool when its owner returns it.
    }

    private void Recycle(Block block)
    {
        lock (_lock)
        {
            if (_blocks.Count < MaxCachedBlocks)
            {
                _blocks.Push(block);
            }
        }
    }

    private sealed class Block(ConnectionBuffers owner) : IMemoryOwner<byte>
    {
        public byte[]? Array { get; set; }

        public Memory<byte> Memory => Array ?? throw new ObjectDisposedException(nameof(Block));

        public void Dispose()
        {
            if (Array is { } array)
            {
                Array = null;
                owner.ReturnArray(array);
                owner.Recycle(this);
            }
        }
    }
}
