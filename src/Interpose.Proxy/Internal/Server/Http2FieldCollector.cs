using System.Text;
using Interpose.Core.Http;
using Interpose.Core.Http2.Hpack;

namespace Interpose.Proxy.Internal;

/// <summary>Collects one field block's fields as the HPACK decoder emits them.</summary>
/// <remarks>
/// A stream's request fields cost no strings when they repeat (per-stream allocation, issue 15): a name in the HPACK
/// static table (RFC 7541 Appendix A) is the table's string, and a value equal to the one at the same position of the
/// previous block with the same name reuses that block's string, as a client's requests on one connection mostly
/// repeat (:authority, :scheme, user-agent, accept...). Kestrel reuses header value strings the same way.
/// The list handed out by <see cref="Take"/> is valid until the next <see cref="Begin"/>: its callers copy what they
/// keep (Http2HeaderRules.ValidateRequest, ToHttp1Trailers).
/// </remarks>
internal sealed class Http2FieldCollector : IHeaderFieldHandler
{
    private List<HttpHeader> _fields = [];
    private List<HttpHeader> _previous = [];

    public int StreamId { get; private set; }

    public bool EndStream { get; private set; }

    public void Begin(int streamId, bool endStream)
    {
        StreamId = streamId;
        EndStream = endStream;
        (_previous, _fields) = (_fields, _previous);
        _fields.Clear();
    }

    public List<HttpHeader> Take() => _fields;

    public void OnHeaderField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed)
    {
        var index = StaticTable.Find(name, value, out var nameIndex);
        if (index != 0)
        {
            _fields.Add(new HttpHeader(StaticTable.NameString(index), StaticTable.ValueString(index)));
            return;
        }

        var nameString = nameIndex != 0 ? StaticTable.NameString(nameIndex) : Encoding.Latin1.GetString(name);
        var position = _fields.Count;
        if (position < _previous.Count && _previous[position] is var previous && previous.Name == nameString && Latin1Equals(value, previous.Value))
        {
            _fields.Add(new HttpHeader(nameString, previous.Value));
            return;
        }

        _fields.Add(new HttpHeader(nameString, Encoding.Latin1.GetString(value)));
    }

    private static bool Latin1Equals(ReadOnlySpan<byte> bytes, string text)
    {
        if (bytes.Length != text.Length)
        {
            return false;
        }

        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] != text[i])
            {
                return false;
            }
        }

        return true;
    }
}
