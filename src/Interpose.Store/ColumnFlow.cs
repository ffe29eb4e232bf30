using Interpose.Core.Filters;
using Interpose.Core.Http;

namespace Interpose.Store;

/// <summary>
/// A row of the <c>flows</c> table as the filter sees it: kind, method, URL, status code and error, read from the columns
/// without decoding the stored flow. Only filters that read nothing else are evaluated on it (<c>ReadsColumnsOnly</c>); the
/// rest of its members are empty. One instance is reloaded for each row.
/// </summary>
internal sealed class ColumnFlow : IFilterableFlow
{
    public FilterFlowKind Kind { get; private set; }

    public string? Method { get; private set; }

    public string? Url { get; private set; }

    public string? Host => null;

    public HttpHeaders? RequestHeaders => null;

    public HttpHeaders? ResponseHeaders => null;

    public ReadOnlyMemory<byte> RequestBody => ReadOnlyMemory<byte>.Empty;

    public ReadOnlyMemory<byte> ResponseBody => ReadOnlyMemory<byte>.Empty;

    // An HTTP flow has a response exactly when it has a status code; a tunnel never has one.
    public bool HasResponse => StatusCode is not null;

    public int? StatusCode { get; private set; }

    public IReadOnlyList<FilterMessage> Messages => [];

    public bool IsWebSocket => false;

    public bool HasError { get; private set; }

    public string? ClientAddress => null;

    public string? ServerAddress => null;

    public string? Marker => null;

    public string? Comment => null;

    public FilterReplayKind Replay => FilterReplayKind.None;

    /// <summary>Reads columns 1-5 of <c>SELECT seq, kind, method, url, status_code, error</c>.</summary>
    public ColumnFlow Load(Microsoft.Data.Sqlite.SqliteDataReader reader)
    {
        Kind = reader.GetString(1) == "http" ? FilterFlowKind.Http : FilterFlowKind.Tcp;
        Method = reader.IsDBNull(2) ? null : reader.GetString(2);
        Url = reader.IsDBNull(3) ? null : reader.GetString(3);
        StatusCode = reader.IsDBNull(4) ? null : reader.GetInt32(4);
        HasError = reader.GetInt64(5) != 0;
        return this;
    }
}
