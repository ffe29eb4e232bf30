using Interpose.Core.Filters;
using Interpose.Core.Http;

namespace Interpose.Core.Flows;

/// <summary>A <see cref="TunnelFlow"/> as the filter operators read it: mitmproxy's TCP flow, without messages (only
/// byte counts are recorded).</summary>
internal sealed class TunnelFlowFilterView(TunnelFlow flow) : IFilterableFlow
{
    public FilterFlowKind Kind => FilterFlowKind.Tcp;

    public string? Method => null;

    public string? Url => null;

    public string? Host => null;

    public HttpHeaders? RequestHeaders => null;

    public HttpHeaders? ResponseHeaders => null;

    public ReadOnlyMemory<byte> RequestBody => ReadOnlyMemory<byte>.Empty;

    public ReadOnlyMemory<byte> ResponseBody => ReadOnlyMemory<byte>.Empty;

    public bool HasResponse => false;

    public int? StatusCode => null;

    public IReadOnlyList<FilterMessage> Messages => [];

    public bool IsWebSocket => false;

    public bool HasError => flow.Error is not null;

    public string? ClientAddress => flow.Client?.ToString();

    public string? ServerAddress => flow.Server?.ToString();

    public string? Marker => flow.Marker;

    public string? Comment => flow.Comment;

    public FilterReplayKind Replay => flow.Replay;
}
