using System.Text;

namespace Interpose.Core.Http;

/// <summary>Cached strings for common field names, methods and reason phrases so parsing a typical head
/// allocates only for values. Matching is exact (case-sensitive) so the wire spelling is preserved.</summary>
internal static class KnownHeaderNames
{
    private static readonly string[] Names =
    [
        "Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Connection", "Content-Length",
        "Content-Type", "Transfer-Encoding", "Cookie", "Set-Cookie", "Referer", "Origin", "Authorization",
        "Cache-Control", "Pragma", "Upgrade", "Upgrade-Insecure-Requests", "If-None-Match", "If-Modified-Since",
        "Date", "Server", "ETag", "Last-Modified", "Expires", "Vary", "Location", "Keep-Alive", "Proxy-Connection",
        "Proxy-Authorization", "Content-Encoding", "Access-Control-Allow-Origin", "Strict-Transport-Security",
        "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile",
        "Sec-Ch-Ua-Platform", "Priority", "DNT", "TE", "Trailer", "Age", "Via", "X-Forwarded-For",
        "host", "user-agent", "accept", "accept-encoding", "accept-language", "connection", "content-length",
        "content-type", "transfer-encoding", "cookie", "set-cookie", "referer", "origin", "authorization",
        "cache-control", "date", "server", "etag", "last-modified", "vary", "location", "content-encoding",
        "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user", "sec-ch-ua", "sec-ch-ua-mobile",
        "sec-ch-ua-platform", "priority", "upgrade-insecure-requests", "if-none-match", "if-modified-since",
    ];

    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "CONNECT", "PATCH", "TRACE"];

    private static readonly string[] Reasons = ["OK", "Not Found", "No Content", "Not Modified", "Found", "Moved Permanently", "Continue", "Switching Protocols", "Connection established", "Connection Established", "Bad Request", "Internal Server Error"];

    private static readonly byte[][] NameBytes = ToBytes(Names);
    private static readonly byte[][] MethodBytes = ToBytes(Methods);
    private static readonly byte[][] ReasonBytes = ToBytes(Reasons);

    public static string GetName(ReadOnlySpan<byte> ascii) => Lookup(ascii, Names, NameBytes);

    public static string GetMethod(ReadOnlySpan<byte> ascii) => Lookup(ascii, Methods, MethodBytes);

    public static string GetReason(ReadOnlySpan<byte> latin1) => Lookup(latin1, Reasons, ReasonBytes);

    private static string Lookup(ReadOnlySpan<byte> bytes, string[] strings, byte[][] table)
    {
        if (bytes.IsEmpty)
        {
            return string.Empty;
        }

        for (int i = 0; i < table.Length; i++)
        {
            byte[] candidate = table[i];
            if (candidate.Length == bytes.Length && candidate[0] == bytes[0] && bytes.SequenceEqual(candidate))
            {
                return strings[i];
            }
        }

        return Encoding.Latin1.GetString(bytes);
    }

    private static byte[][] ToBytes(string[] strings)
    {
        var result = new byte[strings.Length][];
        for (int i = 0; i < strings.Length; i++)
        {
            result[i] = Encoding.Latin1.GetBytes(strings[i]);
        }

        return result;
    }
}
