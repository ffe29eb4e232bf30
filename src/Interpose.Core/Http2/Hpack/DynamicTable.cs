namespace Interpose.Core.Http2.Hpack;

/// <summary>The HPACK dynamic table (RFC 7541 §2.3.2, §4): a FIFO of entries, newest at index 0, with size accounting
/// and eviction. A ring buffer; at most maxSize / 32 entries can ever fit.</summary>
internal sealed class DynamicTable
{
    private HeaderField[] _entries;
    private int _head; // index of the newest entry
    private int _count;

    public DynamicTable(int maxSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        MaxSize = maxSize;
        _entries = new HeaderField[Math.Max(1, maxSize / HeaderField.EntryOverhead)];
    }

    /// <summary>Entries in the table.</summary>
    public int Count => _count;

    /// <summary>Sum of entry sizes (RFC 7541 §4.1).</summary>
    public int Size { get; private set; }

    /// <summary>The current maximum size (set by a dynamic table size update, RFC 7541 §6.3).</summary>
    public int MaxSize { get; private set; }

    /// <summary>The entry at <paramref name="index"/>, 0 = newest (HPACK index 62 + <paramref name="index"/>).</summary>
    public HeaderField this[int index]
    {
        get
        {
            if ((uint)index >= (uint)_count)
            {
                throw new ArgumentOutOfRangeException(nameof(index));
            }

            return _entries[(_head - index + _entries.Length) % _entries.Length];
        }
    }

    /// <summary>Adds an entry at the front, evicting from the end until it fits (RFC 7541 §4.4). An entry larger than
    /// the maximum size empties the table and is not added — "not an error".</summary>
    public void Insert(HeaderField field)
    {
        if (field.Size > MaxSize)
        {
            Clear();
            return;
        }

        EvictTo(MaxSize - field.Size);
        _head = (_head + 1) % _entries.Length;
        _entries[_head] = field;
        _count++;
        Size += field.Size;
    }

    /// <summary>Changes the maximum size, evicting as needed (RFC 7541 §4.3).</summary>
    public void Resize(int maxSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        EvictTo(maxSize);
        int capacity = Math.Max(1, maxSize / HeaderField.EntryOverhead);
        if (capacity != _entries.Length)
        {
            var entries = new HeaderField[Math.Max(capacity, _count)];
            for (int i = 0; i < _count; i++)
            {
                // Oldest at the lowest slot, newest at _count - 1.
                entries[_count - 1 - i] = this[i];
            }

            _entries = entries;
            _head = Math.Max(0, _count - 1);
        }

        MaxSize = maxSize;
    }

    /// <summary>Removes every entry.</summary>
    public void Clear()
    {
        Array.Clear(_entries);
        _count = 0;
        _head = 0;
        Size = 0;
    }

    private void EvictTo(int available)
    {
        while (_count > 0 && Size > available)
        {
            int oldest = (_head - _count + 1 + _entries.Length) % _entries.Length;
            Size -= _entries[oldest].Size;
            _entries[oldest] = default;
            _count--;
        }
    }
}
