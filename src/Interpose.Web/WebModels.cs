using System.Text.Json.Serialization;
using Interpose.Core.Flows;

namespace Interpose.Web;

// The API's JSON shapes (camelCase). Heads are lists of [name, value] pairs: wire order and spelling kept.

/// <summary>A page of the list: <paramref name="Offset"/> is the position of its first row among the matching flows;
/// <paramref name="Total"/> (with <c>tail</c> only) how many match.</summary>
internal sealed record FlowListResponse(IReadOnlyList<FlowSummary> Flows, bool Truncated, int Offset = 0, long? Total = null);

internal sealed record ApiError(string Error, int? Position = null);

internal sealed record ApiInfo(bool ReadOnly, bool CanReplay, bool CanIntercept, string? InterceptFilter, string? Source);

internal sealed record BodyInfo(long Length, long Recorded, bool Truncated, string? ContentType, string? ContentEncoding, bool Decodable);

internal sealed record MessageDetails(string HttpVersion, IReadOnlyList<string[]> Headers, IReadOnlyList<string[]>? Trailers, BodyInfo Body);

internal sealed record CertificateDetails(string Subject, string Issuer, string NotBefore, string NotAfter, string Sha256, IReadOnlyList<string> Names);

internal sealed record TlsDetails(string? Version, string? CipherSuite, string? Alpn, string? Sni, IReadOnlyList<CertificateDetails> Chain);

internal sealed record TunnelDetails(string Kind, string Host, int Port, string? Sni, long BytesFromClient, long BytesFromServer, double? DurationMs);

/// <summary>One WebSocket message for the details pane: text shown as text, anything else as hex, both cut to a preview.</summary>
internal sealed record WebSocketMessageDetails(bool FromClient, string Opcode, double OffsetMs, long Length, bool Truncated, bool Compressed, string? Text, string? Hex);

internal sealed record WebSocketDetails(IReadOnlyList<WebSocketMessageDetails> Messages, long NotShown, int? CloseCode, string? CloseReason, bool? ClosedByClient, string? ParseError);

internal sealed record FlowDetails
{
    public required FlowSummary Summary { get; init; }

    public string? Client { get; init; }

    public string? Server { get; init; }

    public string? RequestLine { get; init; }

    public string? StatusLine { get; init; }

    public MessageDetails? Request { get; init; }

    public MessageDetails? Response { get; init; }

    public FlowTimings? Timings { get; init; }

    public TlsDetails? ClientTls { get; init; }

    public TlsDetails? ServerTls { get; init; }

    public FlowError? Error { get; init; }

    public TunnelDetails? Tunnel { get; init; }

    public WebSocketDetails? WebSocket { get; init; }

    /// <summary>The flow's tags (a replay's, an addon's), name to value.</summary>
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
}

internal sealed record MetaUpdate(string? Marker, string? Comment);

/// <summary>An edited request (replay) or message (intercept resume); null members keep what is there.</summary>
internal sealed record MessageEdit(string? Method, string? Url, int? Status, IReadOnlyList<string[]>? Headers, string? Body, string? BodyBase64);

internal sealed record InterceptFilterUpdate(string? Filter);

internal sealed record PausedExchange(string Key, string Phase, string Method, string Url, int? Status, long PausedAt, IReadOnlyList<string[]> Headers, string Body, bool BodyIsText);

internal sealed record InterceptState(string? Filter, IReadOnlyList<PausedExchange> Paused);

internal sealed record IdList(IReadOnlyList<Guid>? Ids);

internal sealed record ReplayResult(int? Status, string? Error);

internal sealed record DownloadTicket(string Url);

internal sealed record CountResult(long Count);

/// <summary>The live list's "removed" event: the removed flows' ids, and how many of them the browser's filter matches
/// (were in its list): a browser that finds fewer of them among its loaded rows had the rest as unloaded placeholders,
/// which it cannot tell apart, and reloads.</summary>
internal sealed record RemovedRows(IReadOnlyList<Guid> Ids, long InList);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(FlowListResponse))]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(ApiInfo))]
[JsonSerializable(typeof(FlowDetails))]
[JsonSerializable(typeof(MetaUpdate))]
[JsonSerializable(typeof(MessageEdit))]
[JsonSerializable(typeof(InterceptFilterUpdate))]
[JsonSerializable(typeof(InterceptState))]
[JsonSerializable(typeof(IdList))]
[JsonSerializable(typeof(ReplayResult))]
[JsonSerializable(typeof(DownloadTicket))]
[JsonSerializable(typeof(CountResult))]
[JsonSerializable(typeof(FlowSummary))]
[JsonSerializable(typeof(IReadOnlyList<FlowSummary>))]
[JsonSerializable(typeof(IReadOnlyList<Guid>))]
[JsonSerializable(typeof(RemovedRows))]
internal sealed partial class WebJsonContext : JsonSerializerContext;
