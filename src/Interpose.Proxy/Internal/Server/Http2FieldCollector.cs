using System.Text;
using Interpose.Core.Http;
using Interpose.Core.Http2.Hpack;

namespace Interpose.Proxy.Internal;

/// <summary>Collects one field block's fields as the HPACK decoder emits them.</summary>
internal sealed class Http2FieldCollector : IHeaderFieldHandler
{
    private List<HttpHeader> _fields = [];

    public int StreamId { get; private set; }

    public bool EndStream { get; private set; }

    public void Begin(int streamId, bool endStream)
    {
        StreamId = streamId;
        EndStream = endStream;
        _fields = [];
    }

    public List<HttpHeader> Take() => _fields;

    public void OnHeaderField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed) =>
        _fields.Add(new HttpHeader(Encoding.Latin1.GetString(name), Encoding.Latin1.GetString(value)));
}
