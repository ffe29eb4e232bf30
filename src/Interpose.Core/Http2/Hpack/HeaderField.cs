namespace Interpose.Core.Http2.Hpack;

/// <summary>One table entry: name and value octets, and its size for table accounting.</summary>
internal readonly struct HeaderField
{
    /// <summary>RFC 7541 §4.1: "The size of an entry is the sum of its name's length in octets, its value's length in
    /// octets, and 32" (an estimate of the per-entry overhead).</summary>
    public const int EntryOverhead = 32;

    public HeaderField(byte[] name, byte[] value)
    {
        Name = name;
        Value = value;
    }

    public byte[] Name { get; }

    public byte[] Value { get; }

    public int Size => Name.Length + Value.Length + EntryOverhead;
}
