using System.Text;

namespace Interpose.Proxy.Rules;

/// <summary>
/// What a request must share with a recorded one to be answered by it: mitmproxy's <c>ServerPlayback._hash</c> (method,
/// scheme, port, path, the query's parameters in order without the ignored ones, the host unless ignored, the body
/// unless ignored). The body is compared by SHA-256, which a recording keeps even for a body cut at its cap.
/// </summary>
internal readonly record struct ServerReplayKey(string Method, string Scheme, string? Host, int Port, string Path, string Query, string? BodySha256)
{
    /// <summary>The key of a request with these parts; <paramref name="pathAndQuery"/> is the origin-form target.</summary>
    public static ServerReplayKey Create(ServerReplayOptions options, string method, string scheme, string host, int port, string pathAndQuery, string? bodySha256)
    {
        var question = pathAndQuery.IndexOf('?', StringComparison.Ordinal);
        var path = question < 0 ? pathAndQuery : pathAndQuery[..question];
        var query = question < 0 ? "" : Filter(pathAndQuery[(question + 1)..], options.IgnoreParams);
        return new ServerReplayKey(
            method,
            scheme.ToLowerInvariant(),
            options.IgnoreHost ? null : host.ToLowerInvariant(),
            port,
            path,
            query,
            options.IgnoreContent ? null : bodySha256);
    }

    /// <summary>The query's <c>name=value</c> pairs in order, as sent, without those whose decoded name is ignored.</summary>
    private static string Filter(string query, IReadOnlyCollection<string> ignored)
    {
        if (ignored.Count == 0)
        {
            return query;
        }

        var kept = new StringBuilder(query.Length);
        foreach (var pair in query.Split('&'))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var name = Decode(equals < 0 ? pair : pair[..equals]);
            if (!ignored.Contains(name))
            {
                kept.Append(kept.Length > 0 ? "&" : "").Append(pair);
            }
        }

        return kept.ToString();
    }

    // WHATWG URL §5.1 (application/x-www-form-urlencoded parsing), as Python's parse_qsl reads names: '+' is a space.
    private static string Decode(string name) => Uri.UnescapeDataString(name.Replace('+', ' '));
}
