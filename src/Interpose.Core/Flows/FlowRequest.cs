using System.Globalization;
using System.Text.Json.Serialization;

namespace Interpose.Core.Flows;

/// <summary>A recorded HTTP request.</summary>
public sealed record FlowRequest : FlowMessage
{
    /// <summary>The method as received.</summary>
    public required string Method { get; init; }

    /// <summary><c>http</c> or <c>https</c>.</summary>
    public required string Scheme { get; init; }

    /// <summary>The target host (name or IP literal, IPv6 without brackets).</summary>
    public required string Host { get; init; }

    /// <summary>The target port.</summary>
    public required int Port { get; init; }

    /// <summary>The path and query (origin form); <c>*</c> for a server-wide OPTIONS.</summary>
    public required string Path { get; init; }

    /// <summary>The request URL: scheme, host, the port when not the scheme's default, path and query.</summary>
    [JsonIgnore]
    public string Url
    {
        get
        {
            var host = Host.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host;
            var defaultPort = Scheme == "https" ? 443 : 80;
            var port = Port == defaultPort ? "" : ":" + Port.ToString(CultureInfo.InvariantCulture);
            return Scheme + "://" + host + port + UrlPath(Path);
        }
    }

    /// <summary>The request target as a URL's path: "OPTIONS *" (RFC 9112 §3.2.4) has the path "/", and a target
    /// without its leading slash gets one. Shared with the live exchange's URL, so that ~u sees the same text in both.</summary>
    internal static string UrlPath(string target) => target.StartsWith('/') ? target : "/" + (target == "*" ? "" : target);
}
