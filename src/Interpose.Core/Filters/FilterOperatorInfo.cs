using System.Collections.Frozen;
using System.Text.RegularExpressions;

namespace Interpose.Core.Filters;

/// <summary>
/// One row of the operator table: the code after <c>~</c>, what it takes, how its regex is compiled, and a line of help.
/// The table is mitmproxy's (<c>mitmproxy/flowfilter.py</c>, <c>filter_unary</c>/<c>filter_rex</c>/<c>filter_int</c>).
/// </summary>
/// <param name="Operator">The operator.</param>
/// <param name="Code">The code without the <c>~</c> (case-sensitive: <c>~D</c> is not <c>~d</c>).</param>
/// <param name="Arity">What follows the code.</param>
/// <param name="ExtraOptions">Options besides the case rule: Multiline for header and comment operators, Singleline for
/// body operators, as mitmproxy's <c>re.MULTILINE</c> and <c>re.DOTALL</c>.</param>
/// <param name="IsBytes">Whether mitmproxy matches this operator against bytes (its pattern is UTF-8-encoded); here the
/// subject is viewed as Latin-1 text and the pattern converted the same way, so the two agree byte for byte.</param>
/// <param name="Help">A line of help, mitmproxy's wording.</param>
public sealed record FilterOperatorInfo(FilterOperator Operator, string Code, FilterArity Arity, RegexOptions ExtraOptions, bool IsBytes, string Help)
{
    /// <summary>Every operator, in mitmproxy's help order.</summary>
    public static IReadOnlyList<FilterOperatorInfo> All { get; } =
    [
        new(FilterOperator.Asset, "a", FilterArity.None, RegexOptions.None, true, "Match asset in response: CSS, JavaScript, images, fonts."),
        new(FilterOperator.All, "all", FilterArity.None, RegexOptions.None, false, "Match all flows"),
        new(FilterOperator.Body, "b", FilterArity.Regex, RegexOptions.Singleline, true, "Body"),
        new(FilterOperator.RequestBody, "bq", FilterArity.Regex, RegexOptions.Singleline, true, "Request body"),
        new(FilterOperator.ResponseBody, "bs", FilterArity.Regex, RegexOptions.Singleline, true, "Response body"),
        new(FilterOperator.StatusCode, "c", FilterArity.Number, RegexOptions.None, false, "HTTP response code"),
        new(FilterOperator.Comment, "comment", FilterArity.Regex, RegexOptions.Multiline, false, "Flow comment"),
        new(FilterOperator.Domain, "d", FilterArity.Regex, RegexOptions.None, false, "Domain"),
        new(FilterOperator.Dns, "dns", FilterArity.None, RegexOptions.None, false, "Match DNS flows"),
        new(FilterOperator.Destination, "dst", FilterArity.Regex, RegexOptions.None, false, "Match destination address"),
        new(FilterOperator.Error, "e", FilterArity.None, RegexOptions.None, false, "Match error"),
        new(FilterOperator.Header, "h", FilterArity.Regex, RegexOptions.Multiline, true, "Header"),
        new(FilterOperator.RequestHeader, "hq", FilterArity.Regex, RegexOptions.Multiline, true, "Request header"),
        new(FilterOperator.ResponseHeader, "hs", FilterArity.Regex, RegexOptions.Multiline, true, "Response header"),
        new(FilterOperator.Http, "http", FilterArity.None, RegexOptions.None, false, "Match HTTP flows"),
        new(FilterOperator.Method, "m", FilterArity.Regex, RegexOptions.None, true, "Method"),
        new(FilterOperator.Marked, "marked", FilterArity.None, RegexOptions.None, false, "Match marked flows"),
        new(FilterOperator.Marker, "marker", FilterArity.Regex, RegexOptions.None, false, "Match marked flows with specified marker"),
        new(FilterOperator.Request, "q", FilterArity.None, RegexOptions.None, false, "Match request with no response"),
        new(FilterOperator.Replay, "replay", FilterArity.None, RegexOptions.None, false, "Match replayed flows"),
        new(FilterOperator.ReplayRequest, "replayq", FilterArity.None, RegexOptions.None, false, "Match replayed client request"),
        new(FilterOperator.ReplayResponse, "replays", FilterArity.None, RegexOptions.None, false, "Match replayed server response"),
        new(FilterOperator.Response, "s", FilterArity.None, RegexOptions.None, false, "Match response"),
        new(FilterOperator.Source, "src", FilterArity.Regex, RegexOptions.None, false, "Match source address"),
        new(FilterOperator.ContentType, "t", FilterArity.Regex, RegexOptions.None, true, "Content-type header"),
        new(FilterOperator.Tcp, "tcp", FilterArity.None, RegexOptions.None, false, "Match TCP flows"),
        new(FilterOperator.RequestContentType, "tq", FilterArity.Regex, RegexOptions.None, true, "Request Content-Type header"),
        new(FilterOperator.ResponseContentType, "ts", FilterArity.Regex, RegexOptions.None, true, "Response Content-Type header"),
        new(FilterOperator.Url, "u", FilterArity.Regex, RegexOptions.None, false, "URL"),
        new(FilterOperator.Udp, "udp", FilterArity.None, RegexOptions.None, false, "Match UDP flows"),
        new(FilterOperator.WebSocket, "websocket", FilterArity.None, RegexOptions.None, false, "Match WebSocket flows"),
    ];

    private static readonly FrozenDictionary<string, FilterOperatorInfo> ByCode =
        All.ToFrozenDictionary(i => i.Code, StringComparer.Ordinal);

    private static readonly FrozenDictionary<FilterOperator, FilterOperatorInfo> ByOperator =
        All.ToFrozenDictionary(i => i.Operator);

    /// <summary>The row for <paramref name="op"/>.</summary>
    /// <param name="op">An operator.</param>
    /// <returns>Its row.</returns>
    /// <exception cref="KeyNotFoundException"><paramref name="op"/> is not a defined value.</exception>
    public static FilterOperatorInfo Of(FilterOperator op) => ByOperator[op];

    internal static bool TryGet(ReadOnlySpan<char> code, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FilterOperatorInfo? info) =>
        ByCode.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(code, out info);
}
