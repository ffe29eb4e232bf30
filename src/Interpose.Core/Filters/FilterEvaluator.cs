using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;
using Interpose.Core.Http;

namespace Interpose.Core.Filters;

/// <summary>
/// Evaluates a filter tree against a flow, with mitmproxy's meaning for each operator (<c>mitmproxy/flowfilter.py</c>).
/// Text subjects are matched as they are; byte subjects (bodies, messages) are viewed as Latin-1 in a pooled buffer,
/// and header blocks are rendered into one, so evaluation allocates nothing per flow.
/// </summary>
internal static partial class FilterEvaluator
{
    /// <summary>
    /// <c>~a</c>'s asset types, mitmproxy's <c>FAsset.ASSET_TYPES</c>, searched (unanchored) in each response
    /// Content-Type value, compiled without IGNORECASE as there.
    /// </summary>
    [GeneratedRegex("text/javascript|application/x-javascript|application/javascript|text/css|image/.*|font/.*|application/font.*", RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 250)]
    private static partial Regex AssetType();

    public static bool Evaluate(FilterNode node, IFilterableFlow f)
    {
        switch (node)
        {
            case FilterNot not:
                return !Evaluate(not.Operand, f);
            case FilterAnd and:
                foreach (var o in and.Operands)
                {
                    if (!Evaluate(o, f))
                    {
                        return false;
                    }
                }

                return true;
            case FilterOr or:
                foreach (var o in or.Operands)
                {
                    if (Evaluate(o, f))
                    {
                        return true;
                    }
                }

                return false;
            case FilterFlag flag:
                return Flag(flag.Operator, f);
            case FilterStatusCode code:
                return f.StatusCode == code.Code;
            case FilterPattern p:
                return Pattern(p, f);
            default:
                throw new InvalidOperationException($"Unknown filter node {node.GetType().Name}.");
        }
    }

    private static bool IsHttpOrDns(IFilterableFlow f) => f.Kind is FilterFlowKind.Http or FilterFlowKind.Dns;

    private static bool Flag(FilterOperator op, IFilterableFlow f) => op switch
    {
        FilterOperator.All => true,
        FilterOperator.Error => f.HasError,
        FilterOperator.Http => f.Kind == FilterFlowKind.Http,
        FilterOperator.Tcp => f.Kind == FilterFlowKind.Tcp,
        FilterOperator.Udp => f.Kind == FilterFlowKind.Udp,
        FilterOperator.Dns => f.Kind == FilterFlowKind.Dns,
        FilterOperator.WebSocket => f.Kind == FilterFlowKind.Http && f.IsWebSocket,
        FilterOperator.Request => IsHttpOrDns(f) && !f.HasResponse,
        FilterOperator.Response => IsHttpOrDns(f) && f.HasResponse,
        FilterOperator.Marked => !string.IsNullOrEmpty(f.Marker),
        FilterOperator.Replay => f.Replay != FilterReplayKind.None,
        FilterOperator.ReplayRequest => f.Replay == FilterReplayKind.Request,
        FilterOperator.ReplayResponse => f.Replay == FilterReplayKind.Response,
        FilterOperator.Asset => f.Kind == FilterFlowKind.Http && f.HasResponse && ContentTypeMatches(AssetType(), f.ResponseHeaders),
        _ => throw new InvalidOperationException($"~{FilterOperatorInfo.Of(op).Code} is not a flag."),
    };

    private static bool Pattern(FilterPattern p, IFilterableFlow f)
    {
        var re = p.Regex;
        bool http = f.Kind == FilterFlowKind.Http;
        switch (p.Operator)
        {
            case FilterOperator.Url:
                return f.Url is { } url && re.IsMatch(url);
            case FilterOperator.Method:
                return f.Method is { } method && re.IsMatch(method);
            case FilterOperator.Domain:
                // mitmproxy: request.host, or pretty_host (the Host header's host).
                return f.Host is { } host && (re.IsMatch(host) || (HostFieldHost(f.RequestHeaders) is { IsEmpty: false } pretty && re.IsMatch(pretty)));
            case FilterOperator.Source:
                return !string.IsNullOrEmpty(f.ClientAddress) && re.IsMatch(f.ClientAddress);
            case FilterOperator.Destination:
                return !string.IsNullOrEmpty(f.ServerAddress) && re.IsMatch(f.ServerAddress);
            case FilterOperator.Marker:
                return re.IsMatch(f.Marker ?? string.Empty);
            case FilterOperator.Comment:
                return re.IsMatch(f.Comment ?? string.Empty);
            case FilterOperator.ContentType:
                return http && (ContentTypeMatches(re, f.RequestHeaders) || (f.HasResponse && ContentTypeMatches(re, f.ResponseHeaders)));
            case FilterOperator.RequestContentType:
                return http && ContentTypeMatches(re, f.RequestHeaders);
            case FilterOperator.ResponseContentType:
                return http && f.HasResponse && ContentTypeMatches(re, f.ResponseHeaders);
            case FilterOperator.Header:
                return http && (HeadersMatch(re, f.RequestHeaders) || (f.HasResponse && HeadersMatch(re, f.ResponseHeaders)));
            case FilterOperator.RequestHeader:
                return http && HeadersMatch(re, f.RequestHeaders);
            case FilterOperator.ResponseHeader:
                return http && f.HasResponse && HeadersMatch(re, f.ResponseHeaders);
            case FilterOperator.Body:
                return BodyMatches(re, f, client: true, server: true);
            case FilterOperator.RequestBody:
                return BodyMatches(re, f, client: true, server: false);
            case FilterOperator.ResponseBody:
                return BodyMatches(re, f, client: false, server: true);
            default:
                throw new InvalidOperationException($"~{FilterOperatorInfo.Of(p.Operator).Code} takes no regex.");
        }
    }

    /// <summary>mitmproxy's <c>_check_content_type</c>: any Content-Type field whose value the regex finds.</summary>
    private static bool ContentTypeMatches(Regex re, HttpHeaders? headers)
    {
        if (headers is null)
        {
            return false;
        }

        foreach (var h in headers)
        {
            if (string.Equals(h.Name, "Content-Type", StringComparison.OrdinalIgnoreCase) && re.IsMatch(h.Value))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The header block as mitmproxy's <c>bytes(headers)</c> renders it: <c>name: value\r\n</c> per field, in
    /// wire order and spelling.</summary>
    private static bool HeadersMatch(Regex re, HttpHeaders? headers)
    {
        if (headers is null)
        {
            return false;
        }

        int length = 0;
        foreach (var h in headers)
        {
            length += h.Name.Length + h.Value.Length + 4;
        }

        char[] buffer = ArrayPool<char>.Shared.Rent(Math.Max(length, 1));
        try
        {
            int at = 0;
            foreach (var h in headers)
            {
                h.Name.CopyTo(buffer.AsSpan(at));
                at += h.Name.Length;
                buffer[at++] = ':';
                buffer[at++] = ' ';
                h.Value.CopyTo(buffer.AsSpan(at));
                at += h.Value.Length;
                buffer[at++] = '\r';
                buffer[at++] = '\n';
            }

            return re.IsMatch(buffer.AsSpan(0, at));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    private static bool BodyMatches(Regex re, IFilterableFlow f, bool client, bool server)
    {
        switch (f.Kind)
        {
            case FilterFlowKind.Http:
                if (client && BytesMatch(re, f.RequestBody.Span))
                {
                    return true;
                }

                if (server && f.HasResponse && BytesMatch(re, f.ResponseBody.Span))
                {
                    return true;
                }

                return f.IsWebSocket && MessagesMatch(re, f.Messages, client, server);
            case FilterFlowKind.Tcp or FilterFlowKind.Udp:
                return MessagesMatch(re, f.Messages, client, server);
            case FilterFlowKind.Dns:
                return (client && BytesMatch(re, f.RequestBody.Span)) || (server && f.HasResponse && BytesMatch(re, f.ResponseBody.Span));
            default:
                return false;
        }
    }

    private static bool MessagesMatch(Regex re, IReadOnlyList<FilterMessage> messages, bool client, bool server)
    {
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if ((m.FromClient ? client : server) && BytesMatch(re, m.Content.Span))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Searches bytes viewed as Latin-1 (one char per byte), the view bytes operators' patterns are built for.</summary>
    private static bool BytesMatch(Regex re, ReadOnlySpan<byte> bytes)
    {
        char[] buffer = ArrayPool<char>.Shared.Rent(Math.Max(bytes.Length, 1));
        try
        {
            int n = Encoding.Latin1.GetChars(bytes, buffer);
            return re.IsMatch(buffer.AsSpan(0, n));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    /// <summary>The host part of the request's Host field (brackets and port removed), as mitmproxy's <c>pretty_host</c>.</summary>
    internal static ReadOnlySpan<char> HostFieldHost(HttpHeaders? headers)
    {
        string? value = headers?.Get("Host");
        if (value is null)
        {
            return default;
        }

        ReadOnlySpan<char> v = value.AsSpan().Trim();
        if (v.StartsWith('['))
        {
            int close = v.IndexOf(']');
            return close > 0 ? v[1..close] : v;
        }

        int colon = v.LastIndexOf(':');
        return colon >= 0 && v.IndexOf(':') == colon ? v[..colon] : v;
    }
}
