namespace Interpose.Core.Http2.Hpack;

/// <summary>Receives the fields <see cref="HpackDecoder"/> decodes, in block order.</summary>
public interface IHeaderFieldHandler
{
    /// <summary>One decoded field. The spans are valid only during the call: copy what you keep.</summary>
    /// <param name="name">The name octets (lowercase if the peer follows RFC 9113 §8.2.1; not checked here).</param>
    /// <param name="value">The value octets (not validated here; see <see cref="Http2HeaderRules"/>).</param>
    /// <param name="neverIndexed">The field came as "literal never indexed" (RFC 7541 §6.2.3): re-encode it the same
    /// way on the next hop ("Intermediaries MUST use the same representation").</param>
    void OnHeaderField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed);
}
