using System.Buffers;

namespace Interpose.Core.Http2.Hpack;

/// <summary>A resumable HPACK decoder (RFC 7541) for one direction of one connection. Feed it every field block
/// fragment in order — HEADERS, then each CONTINUATION — including blocks for streams that are being reset or are
/// unknown: the dynamic table must stay in step with the peer's encoder (RFC 9113 §4.3).</summary>
/// <remarks>
/// <para>Bounds (HPACK bomb, CVE-2016-6581; many-small-fields bomb): a field is emitted only while the field section
/// stays within the max header list size (name + value + 32 per field, RFC 9113 §6.5.2) and the field count limit.
/// Past either, the block is still decoded to the end to keep the table in step, but no field is emitted, strings
/// that only fed the handler are skipped without being buffered, and <see cref="HeaderListSizeExceeded"/> turns true:
/// the caller answers 431 or resets the stream, and the connection lives on. Memory per decoder is therefore bounded
/// by the larger of the list size and the table size, whatever the block.</para>
/// <para>Errors: every malformed representation throws <see cref="Http2ConnectionException"/> with COMPRESSION_ERROR
/// (RFC 9113 §4.3); the decoder is unusable afterwards.</para>
/// </remarks>
public sealed class HpackDecoder
{
    private const byte IndexedMask = 0x80;           // 1xxxxxxx  §6.1
    private const byte IncrementalMask = 0xC0;       // 01xxxxxx  §6.2.1
    private const byte IncrementalValue = 0x40;
    private const byte SizeUpdateMask = 0xE0;        // 001xxxxx  §6.3
    private const byte SizeUpdateValue = 0x20;
    private const byte NeverIndexedMask = 0xF0;      // 0001xxxx  §6.2.3
    private const byte NeverIndexedValue = 0x10;     // 0000xxxx  §6.2.2 otherwise

    private readonly DynamicTable _table;
    private readonly int _maxHeaderListSize;
    private readonly int _maxFieldCount;
    private int _tableSizeCeiling;
    private bool _sizeUpdateRequired;

    private State _state = State.Ready;
    private IntegerDecoder _integer;
    private bool _blockStarted;
    private bool _fieldSeen;
    private int _listSize;
    private int _fieldCount;

    // The field being decoded.
    private bool _index;
    private bool _neverIndexed;
    private HeaderField _indexedName;
    private bool _hasIndexedName;
    private bool _huffman;
    private int _stringLength;
    private int _stringRead;
    private bool _skipString;
    private bool _tooLargeForTable;
    private byte[] _raw = [];
    private byte[] _name = [];
    private int _nameLength;
    private byte[] _value = [];
    private int _valueLength;

    /// <summary>Creates a decoder.</summary>
    /// <param name="maxHeaderTableSize">The SETTINGS_HEADER_TABLE_SIZE this endpoint advertises: the table's initial
    /// size and the ceiling for dynamic table size updates (RFC 7541 §6.3). 4096 until changed.</param>
    /// <param name="maxHeaderListSize">The SETTINGS_MAX_HEADER_LIST_SIZE this endpoint enforces.</param>
    /// <param name="maxFieldCount">The most fields emitted per block.</param>
    /// <exception cref="ArgumentOutOfRangeException">A limit is negative.</exception>
    public HpackDecoder(int maxHeaderTableSize = Http2Limits.HeaderTableSize, int maxHeaderListSize = Http2Limits.MaxHeaderListSize, int maxFieldCount = Http2Limits.MaxHeaderFieldCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeaderTableSize);
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeaderListSize);
        ArgumentOutOfRangeException.ThrowIfNegative(maxFieldCount);
        _table = new DynamicTable(maxHeaderTableSize);
        _tableSizeCeiling = maxHeaderTableSize;
        _maxHeaderListSize = maxHeaderListSize;
        _maxFieldCount = maxFieldCount;
    }

    private enum State
    {
        Ready,
        IndexedIndex,
        LiteralNameIndex,
        SizeUpdate,
        NameLength,
        NameLengthContinue,
        NameString,
        ValueLength,
        ValueLengthContinue,
        ValueString,
    }

    /// <summary>Whether the current (or, after END_HEADERS, the last) block went past the header list size or the field
    /// count: some fields were not emitted. Reset when the next block starts.</summary>
    public bool HeaderListSizeExceeded { get; private set; }

    /// <summary>The dynamic table's current size in octets (RFC 7541 §4.1).</summary>
    public int DynamicTableSize => _table.Size;

    /// <summary>The dynamic table's current maximum size (the last size update, RFC 7541 §6.3).</summary>
    public int DynamicTableMaxSize => _table.MaxSize;

    /// <summary>The number of entries in the dynamic table.</summary>
    public int DynamicTableCount => _table.Count;

    /// <summary>Applies a new SETTINGS_HEADER_TABLE_SIZE of ours once the peer has acknowledged it. If it is below the
    /// table's current maximum, the peer's next block must start with a size update to at most that value (RFC 7541
    /// §4.2: "the encoder MUST signal this change ... at the beginning of the first field block following").</summary>
    /// <param name="maxHeaderTableSize">The acknowledged value.</param>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public void SetMaxHeaderTableSize(int maxHeaderTableSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeaderTableSize);
        _tableSizeCeiling = maxHeaderTableSize;
        if (maxHeaderTableSize < _table.MaxSize)
        {
            _sizeUpdateRequired = true;
        }
    }

    /// <summary>Decodes one field block fragment.</summary>
    /// <param name="fragment">The fragment (a HEADERS or CONTINUATION payload).</param>
    /// <param name="endHeaders">END_HEADERS was set: the block ends with this fragment.</param>
    /// <param name="handler">Receives each decoded field.</param>
    /// <exception cref="ArgumentNullException"><paramref name="handler"/> is null.</exception>
    /// <exception cref="Http2ConnectionException">COMPRESSION_ERROR: the block is malformed (RFC 9113 §4.3).</exception>
    public void Decode(ReadOnlySequence<byte> fragment, bool endHeaders, IHeaderFieldHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        StartBlockIfNeeded();
        foreach (ReadOnlyMemory<byte> segment in fragment)
        {
            DecodeSegment(segment.Span, handler);
        }

        if (endHeaders)
        {
            EndBlock();
        }
    }

    /// <summary>Decodes one field block fragment held in a span.</summary>
    /// <param name="fragment">The fragment.</param>
    /// <param name="endHeaders">END_HEADERS was set.</param>
    /// <param name="handler">Receives each decoded field.</param>
    /// <exception cref="ArgumentNullException"><paramref name="handler"/> is null.</exception>
    /// <exception cref="Http2ConnectionException">COMPRESSION_ERROR: the block is malformed.</exception>
    public void Decode(ReadOnlySpan<byte> fragment, bool endHeaders, IHeaderFieldHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        StartBlockIfNeeded();
        DecodeSegment(fragment, handler);
        if (endHeaders)
        {
            EndBlock();
        }
    }

    private void StartBlockIfNeeded()
    {
        if (_blockStarted)
        {
            return;
        }

        _blockStarted = true;
        _fieldSeen = false;
        _listSize = 0;
        _fieldCount = 0;
        HeaderListSizeExceeded = false;
    }

    private void EndBlock()
    {
        // RFC 7541 §3.2 / RFC 9113 §4.3: a block that ends in the middle of a representation is a decoding error.
        if (_state != State.Ready)
        {
            throw HpackError.Decoding("Field block ends in the middle of a field representation (RFC 7541 §3.2).");
        }

        if (_sizeUpdateRequired)
        {
            throw HpackError.Decoding("Expected a dynamic table size update after SETTINGS_HEADER_TABLE_SIZE was lowered (RFC 7541 §4.2).");
        }

        _blockStarted = false;
    }

    private void DecodeSegment(ReadOnlySpan<byte> data, IHeaderFieldHandler handler)
    {
        int i = 0;
        while (i < data.Length)
        {
            switch (_state)
            {
                case State.Ready:
                    StartRepresentation(data[i++], handler);
                    break;

                case State.IndexedIndex:
                    if (_integer.TryDecode(data[i++], out int index))
                    {
                        OnIndexed(index, handler);
                    }

                    break;

                case State.LiteralNameIndex:
                    if (_integer.TryDecode(data[i++], out int nameIndex))
                    {
                        OnLiteralNameIndex(nameIndex);
                    }

                    break;

                case State.SizeUpdate:
                    if (_integer.TryDecode(data[i++], out int size))
                    {
                        OnSizeUpdate(size);
                    }

                    break;

                case State.NameLength:
                case State.ValueLength:
                    {
                        byte b = data[i++];
                        bool name = _state == State.NameLength;
                        _huffman = (b & 0x80) != 0;
                        if (_integer.BeginTryDecode(b, 7, out int length))
                        {
                            BeginString(length, name, handler);
                        }
                        else
                        {
                            _state = name ? State.NameLengthContinue : State.ValueLengthContinue;
                        }

                        break;
                    }

                case State.NameLengthContinue:
                case State.ValueLengthContinue:
                    {
                        bool name = _state == State.NameLengthContinue;
                        if (_integer.TryDecode(data[i++], out int length))
                        {
                            BeginString(length, name, handler);
                        }

                        break;
                    }

                case State.NameString:
                case State.ValueString:
                    {
                        int take = Math.Min(_stringLength - _stringRead, data.Length - i);
                        if (!_skipString)
                        {
                            data.Slice(i, take).CopyTo(_raw.AsSpan(_stringRead));
                        }

                        _stringRead += take;
                        i += take;
                        if (_stringRead == _stringLength)
                        {
                            EndString(_state == State.NameString, handler);
                        }

                        break;
                    }
            }
        }
    }

    private void StartRepresentation(byte b, IHeaderFieldHandler handler)
    {
        if ((b & IndexedMask) != 0)
        {
            // RFC 7541 §6.1 indexed header field.
            _fieldSeen = true;
            if (_integer.BeginTryDecode(b, 7, out int index))
            {
                OnIndexed(index, handler);
            }
            else
            {
                _state = State.IndexedIndex;
            }

            return;
        }

        if ((b & SizeUpdateMask) == SizeUpdateValue)
        {
            // RFC 7541 §4.2: "This dynamic table size update MUST occur at the beginning of the first header block
            // following the change to the dynamic table size." An update after a field is a decoding error.
            if (_fieldSeen)
            {
                throw HpackError.Decoding("Dynamic table size update after a field representation (RFC 7541 §4.2).");
            }

            if (_integer.BeginTryDecode(b, 5, out int size))
            {
                OnSizeUpdate(size);
            }
            else
            {
                _state = State.SizeUpdate;
            }

            return;
        }

        RequireNoPendingSizeUpdate();
        _fieldSeen = true;
        int prefix;
        if ((b & IncrementalMask) == IncrementalValue)
        {
            _index = true;
            _neverIndexed = false;
            prefix = 6;
        }
        else
        {
            _index = false;
            _neverIndexed = (b & NeverIndexedMask) == NeverIndexedValue;
            prefix = 4;
        }

        _tooLargeForTable = false;
        if (_integer.BeginTryDecode(b, prefix, out int nameIndex))
        {
            OnLiteralNameIndex(nameIndex);
        }
        else
        {
            _state = State.LiteralNameIndex;
        }
    }

    private void OnIndexed(int index, IHeaderFieldHandler handler)
    {
        RequireNoPendingSizeUpdate();

        // RFC 7541 §6.1: "The index value of 0 is not used. It MUST be treated as a decoding error".
        if (index == 0)
        {
            throw HpackError.Decoding("Indexed field with index 0 (RFC 7541 §6.1).");
        }

        HeaderField field = Lookup(index);
        Emit(field.Name, field.Value, neverIndexed: false, handler);
        _state = State.Ready;
    }

    private void OnLiteralNameIndex(int nameIndex)
    {
        if (nameIndex == 0)
        {
            _hasIndexedName = false;
            _state = State.NameLength;
            return;
        }

        _indexedName = Lookup(nameIndex);
        _hasIndexedName = true;
        _nameLength = _indexedName.Name.Length;
        _state = State.ValueLength;
    }

    private void OnSizeUpdate(int size)
    {
        // RFC 7541 §6.3: "The new maximum size MUST be lower than or equal to the limit determined by the protocol using
        // HPACK. A value that exceeds this limit MUST be treated as a decoding error." (RFC 9113: our
        // SETTINGS_HEADER_TABLE_SIZE.)
        if (size > _tableSizeCeiling)
        {
            throw HpackError.Decoding($"Dynamic table size update to {size} exceeds SETTINGS_HEADER_TABLE_SIZE {_tableSizeCeiling} (RFC 7541 §6.3).");
        }

        _table.Resize(size);
        _sizeUpdateRequired = false;
        _state = State.Ready;
    }

    private void RequireNoPendingSizeUpdate()
    {
        if (_sizeUpdateRequired)
        {
            throw HpackError.Decoding("Expected a dynamic table size update after SETTINGS_HEADER_TABLE_SIZE was lowered (RFC 7541 §4.2).");
        }
    }

    private HeaderField Lookup(int index)
    {
        if (index <= StaticTable.Count)
        {
            return StaticTable.Get(index);
        }

        // RFC 7541 §2.3.3: "Indices strictly greater than the sum of the lengths of both tables MUST be treated as a
        // decoding error."
        int dynamicIndex = index - StaticTable.Count - 1;
        if (dynamicIndex >= _table.Count)
        {
            throw HpackError.Decoding($"Index {index} is past the end of the tables (RFC 7541 §2.3.3).");
        }

        return _table[dynamicIndex];
    }

    private void BeginString(int length, bool isName, IHeaderFieldHandler handler)
    {
        // RFC 9113 §8.2.1 needs a non-empty name; an empty one is never useful and is the CVE-2019-9516 pattern.
        if (isName && length == 0)
        {
            throw HpackError.Decoding("Empty field name (CVE-2019-9516).");
        }

        // Bound the decoded size before buffering anything. Emitting needs the field within the list budget; indexing
        // needs it within the table. A string that fits neither is skipped unread.
        int otherPart = isName ? 0 : _nameLength;
        int emitCap = Overflowed ? -1 : _maxHeaderListSize - _listSize - HeaderField.EntryOverhead - otherPart;
        int tableCap = _index && !_tooLargeForTable ? _table.MaxSize - HeaderField.EntryOverhead - otherPart : -1;
        int cap = Math.Max(emitCap, tableCap);

        // A Huffman code is at most 30 bits per octet, so L encoded octets decode to at least ceil(8L/30).
        long minDecoded = _huffman ? ((8L * length) + 29) / 30 : length;
        if (minDecoded > cap)
        {
            _skipString = true;
            if (minDecoded > emitCap)
            {
                HeaderListSizeExceeded = true;
            }

            if (_index)
            {
                _tooLargeForTable = true;
            }
        }
        else
        {
            _skipString = false;
            if (_raw.Length < length)
            {
                _raw = new byte[Math.Max(length, Math.Min(2 * _raw.Length, cap))];
            }
        }

        _stringLength = length;
        _stringRead = 0;
        _state = isName ? State.NameString : State.ValueString;
        if (length == 0)
        {
            EndString(isName, handler);
        }
    }

    private bool Overflowed => HeaderListSizeExceeded;

    private void EndString(bool isName, IHeaderFieldHandler handler)
    {
        int decodedLength = 0;
        if (!_skipString)
        {
            int otherPart = isName ? 0 : _nameLength;
            int emitCap = Overflowed ? -1 : _maxHeaderListSize - _listSize - HeaderField.EntryOverhead - otherPart;
            int tableCap = _index && !_tooLargeForTable ? _table.MaxSize - HeaderField.EntryOverhead - otherPart : -1;
            int cap = Math.Max(Math.Max(emitCap, tableCap), 0);
            ref byte[] target = ref isName ? ref _name : ref _value;

            // A Huffman code is at least 5 bits per octet, so L encoded octets decode to at most 8L/5 (+1 for rounding).
            int needed = (int)Math.Min(cap, _huffman ? (8L * _stringLength / 5) + 1 : _stringLength);
            if (target.Length < needed)
            {
                target = new byte[needed];
            }

            ReadOnlySpan<byte> raw = _raw.AsSpan(0, _stringLength);
            bool fits;
            if (_huffman)
            {
                fits = Huffman.TryDecode(raw, target.AsSpan(0, Math.Min(cap, target.Length)), out decodedLength);
            }
            else
            {
                fits = raw.Length <= cap;
                if (fits)
                {
                    raw.CopyTo(target);
                    decodedLength = raw.Length;
                }
            }

            if (!fits || decodedLength > emitCap)
            {
                HeaderListSizeExceeded = true;
            }

            if (!fits || decodedLength > tableCap)
            {
                _tooLargeForTable |= _index;
            }
        }

        if (isName)
        {
            _nameLength = decodedLength;
            _hasIndexedName = false;
            _state = State.ValueLength;
            return;
        }

        _valueLength = decodedLength;
        EndLiteral(handler);
    }

    private void EndLiteral(IHeaderFieldHandler handler)
    {
        ReadOnlySpan<byte> name = _hasIndexedName ? _indexedName.Name : _name.AsSpan(0, _nameLength);
        ReadOnlySpan<byte> value = _value.AsSpan(0, _valueLength);
        if (!Overflowed)
        {
            Emit(name, value, _neverIndexed, handler);
        }

        if (_index)
        {
            if (_tooLargeForTable)
            {
                // RFC 7541 §4.4: "an attempt to add an entry larger than the maximum size causes the table to be
                // emptied of all existing entries and results in an empty table." Same result without decoding it.
                _table.Clear();
            }
            else
            {
                _table.Insert(new HeaderField(name.ToArray(), value.ToArray()));
            }
        }

        _state = State.Ready;
    }

    private void Emit(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed, IHeaderFieldHandler handler)
    {
        if (Overflowed)
        {
            return;
        }

        int size = name.Length + value.Length + HeaderField.EntryOverhead;
        if (_listSize + size > _maxHeaderListSize || _fieldCount + 1 > _maxFieldCount)
        {
            HeaderListSizeExceeded = true;
            return;
        }

        _listSize += size;
        _fieldCount++;
        handler.OnHeaderField(name, value, neverIndexed);
    }
}
