using System.Buffers;

namespace Interpose.Core.Http2.Hpack;

/// <summary>An HPACK encoder (RFC 7541) for one direction of one connection. Not thread-safe: use it under the
/// connection's write lock, and write each block's frames in the same step, or the peer's table drifts. A failure
/// while encoding leaves the table undefined: close the connection.</summary>
/// <remarks>Names are written in lowercase (RFC 9113 §8.2.1: "field names MUST be converted to lowercase"); the
/// translation layer keeps HTTP/1.1 spelling separately. Field order is kept. Strings are Huffman-coded when that is
/// no longer than the literal (as the RFC 7541 Appendix C.6 examples do) (and Huffman is on).</remarks>
public sealed class HpackEncoder
{
    /// <summary>Cookies shorter than this are never indexed: RFC 7541 §7.1.3 — short values are open to brute-force
    /// guessing through the compression ratio. 20 octets, the threshold nghttp2 uses.</summary>
    public const int ShortCookieLength = 20;

    private readonly DynamicTable _table;
    private readonly bool _useHuffman;
    private readonly int _maxTableSizeLimit;
    private int _pendingMinSize = -1;
    private int _pendingFinalSize = -1;
    private byte[] _scratch = new byte[256];

    /// <summary>Creates an encoder.</summary>
    /// <param name="maxDynamicTableSize">The most table this encoder will use, whatever the peer allows; at most the
    /// peer decoder's starting size (4096 in HTTP/2 before any SETTINGS). 0 disables the dynamic table
    /// (SocketsHttpHandler's choice for requests: no encoder state to corrupt or probe, RFC 7541 §7.1).</param>
    /// <param name="useHuffman">Huffman-code strings when that is no longer than the literal.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxDynamicTableSize"/> is negative.</exception>
    public HpackEncoder(int maxDynamicTableSize = Http2Limits.HeaderTableSize, bool useHuffman = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDynamicTableSize);
        _maxTableSizeLimit = maxDynamicTableSize;
        _table = new DynamicTable(maxDynamicTableSize);
        _useHuffman = useHuffman;

        // NOTE: no size update is signalled for a table smaller than the peer's 4096: the encoder only evicts earlier
        // than the decoder, so every index it emits names the same entry in the decoder's (larger) table.
    }

    /// <summary>The dynamic table's current size (RFC 7541 §4.1).</summary>
    public int DynamicTableSize => _table.Size;

    /// <summary>The number of entries in the dynamic table.</summary>
    public int DynamicTableCount => _table.Count;

    /// <summary>Applies the peer's SETTINGS_HEADER_TABLE_SIZE. The table uses min(that, this encoder's limit); the
    /// change is signalled at the start of the next block (RFC 7541 §4.2: the smallest size reached and then the final
    /// one when it changed more than once).</summary>
    /// <param name="peerHeaderTableSize">The peer's SETTINGS_HEADER_TABLE_SIZE.</param>
    public void SetPeerHeaderTableSize(uint peerHeaderTableSize)
    {
        int size = (int)Math.Min(peerHeaderTableSize, (uint)_maxTableSizeLimit);
        if (size == _table.MaxSize && _pendingFinalSize < 0)
        {
            return;
        }

        _pendingMinSize = _pendingMinSize < 0 ? size : Math.Min(_pendingMinSize, size);
        _pendingFinalSize = size;
        if (_pendingFinalSize == _table.MaxSize && _pendingMinSize >= _table.MaxSize)
        {
            // Back where the table is without ever going below it: nothing to signal.
            _pendingMinSize = _pendingFinalSize = -1;
        }
    }

    /// <summary>Starts a field block: writes any pending dynamic table size update. Call once per block, before the
    /// first field.</summary>
    /// <param name="output">Where the block goes.</param>
    /// <exception cref="ArgumentNullException"><paramref name="output"/> is null.</exception>
    public void BeginBlock(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (_pendingFinalSize < 0)
        {
            return;
        }

        if (_pendingMinSize < _pendingFinalSize)
        {
            WriteSizeUpdate(output, _pendingMinSize);
        }

        WriteSizeUpdate(output, _pendingFinalSize);
        _pendingMinSize = _pendingFinalSize = -1;
    }

    /// <summary>Encodes a whole block: <see cref="BeginBlock"/>, then each field with <see cref="HpackIndexing.Auto"/>.</summary>
    /// <param name="fields">The fields in order, pseudo-fields first.</param>
    /// <param name="output">Where the block goes.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">A name or value holds a character above U+00FF.</exception>
    public void EncodeBlock(IEnumerable<Http.HttpHeader> fields, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(fields);
        BeginBlock(output);
        foreach (Http.HttpHeader field in fields)
        {
            EncodeField(field.Name, field.Value, output);
        }
    }

    /// <summary>Encodes one field.</summary>
    /// <param name="name">The name; ASCII uppercase is lowered.</param>
    /// <param name="value">The value (Latin-1).</param>
    /// <param name="output">Where the field goes.</param>
    /// <param name="indexing">The representation; <see cref="HpackIndexing.NeverIndexed"/> for fields that arrived
    /// never-indexed or that the user flagged sensitive.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">A name or value holds a character above U+00FF.</exception>
    public void EncodeField(string name, string value, IBufferWriter<byte> output, HpackIndexing indexing = HpackIndexing.Auto)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(output);
        int total = name.Length + value.Length;
        if (_scratch.Length < total)
        {
            _scratch = new byte[Math.Max(total, _scratch.Length * 2)];
        }

        Span<byte> nameBytes = _scratch.AsSpan(0, name.Length);
        Span<byte> valueBytes = _scratch.AsSpan(name.Length, value.Length);
        ToLatin1(name, nameBytes, lower: true);
        ToLatin1(value, valueBytes, lower: false);
        EncodeField(nameBytes, valueBytes, output, indexing);
    }

    private void EncodeField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, IBufferWriter<byte> output, HpackIndexing indexing)
    {
        if (indexing == HpackIndexing.Auto)
        {
            indexing = IsSensitive(name, value) ? HpackIndexing.NeverIndexed : HpackIndexing.Incremental;
        }

        int staticIndex = StaticTable.Find(name, value, out int nameIndex);
        if (indexing != HpackIndexing.NeverIndexed)
        {
            int index = staticIndex != 0 ? staticIndex : FindDynamic(name, value, ref nameIndex);
            if (index != 0)
            {
                // RFC 7541 §6.1: indexed header field, 1xxxxxxx.
                WriteInteger(output, index, 7, 0x80);
                return;
            }
        }
        else if (nameIndex == 0)
        {
            FindDynamic(name, value, ref nameIndex);
        }

        int size = name.Length + value.Length + HeaderField.EntryOverhead;
        if (indexing == HpackIndexing.Incremental && size > _table.MaxSize)
        {
            // An entry larger than the table would only empty it (RFC 7541 §4.4).
            indexing = HpackIndexing.WithoutIndexing;
        }

        // RFC 7541 §6.2.1 01xxxxxx (6-bit index), §6.2.2 0000xxxx, §6.2.3 0001xxxx (4-bit index).
        (int prefix, byte flags) = indexing switch
        {
            HpackIndexing.Incremental => (6, (byte)0x40),
            HpackIndexing.NeverIndexed => (4, (byte)0x10),
            _ => (4, (byte)0x00),
        };
        WriteInteger(output, nameIndex, prefix, flags);
        if (nameIndex == 0)
        {
            WriteString(output, name);
        }

        WriteString(output, value);
        if (indexing == HpackIndexing.Incremental)
        {
            _table.Insert(new HeaderField(name.ToArray(), value.ToArray()));
        }
    }

    private static bool IsSensitive(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
        name.SequenceEqual("authorization"u8)
        || name.SequenceEqual("proxy-authorization"u8)
        || (name.SequenceEqual("cookie"u8) && value.Length < ShortCookieLength);

    private int FindDynamic(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, ref int nameIndex)
    {
        for (int i = 0; i < _table.Count; i++)
        {
            HeaderField entry = _table[i];
            if (entry.Name.AsSpan().SequenceEqual(name))
            {
                if (entry.Value.AsSpan().SequenceEqual(value))
                {
                    return StaticTable.Count + 1 + i;
                }

                if (nameIndex == 0)
                {
                    nameIndex = StaticTable.Count + 1 + i;
                }
            }
        }

        return 0;
    }

    private void WriteSizeUpdate(IBufferWriter<byte> output, int size)
    {
        // RFC 7541 §6.3: 001xxxxx with a 5-bit prefix.
        WriteInteger(output, size, 5, 0x20);
        _table.Resize(size);
    }

    private static void WriteInteger(IBufferWriter<byte> output, int value, int prefix, byte flags)
    {
        Span<byte> span = output.GetSpan(IntegerCodec.MaxEncodedLength);
        output.Advance(IntegerCodec.Encode(value, prefix, flags, span));
    }

    private void WriteString(IBufferWriter<byte> output, ReadOnlySpan<byte> s)
    {
        // RFC 7541 §5.2: H bit, 7-bit prefix length, then the octets.
        int huffmanLength = _useHuffman ? Huffman.GetEncodedLength(s) : int.MaxValue;
        bool huffman = huffmanLength <= s.Length;
        int length = huffman ? huffmanLength : s.Length;
        Span<byte> span = output.GetSpan(IntegerCodec.MaxEncodedLength + length);
        int n = IntegerCodec.Encode(length, 7, huffman ? (byte)0x80 : (byte)0, span);
        if (huffman)
        {
            n += Huffman.Encode(s, span[n..]);
        }
        else
        {
            s.CopyTo(span[n..]);
            n += s.Length;
        }

        output.Advance(n);
    }

    private static void ToLatin1(string s, Span<byte> destination, bool lower)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c > '\u00FF')
            {
                throw new ArgumentException($"Character U+{(int)c:X4} cannot be sent in an HTTP field (Latin-1 only).", nameof(s));
            }

            destination[i] = lower && c is >= 'A' and <= 'Z' ? (byte)(c | 0x20) : (byte)c;
        }
    }
}
