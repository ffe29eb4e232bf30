namespace Interpose.Core.Http;

/// <summary>The head of an HTTP/1.x request: request line and header section.</summary>
public sealed class HttpRequestHead
{
    /// <summary>Creates an empty request head (<c>GET / HTTP/1.1</c>, no headers).</summary>
    public HttpRequestHead()
    {
    }

    internal HttpRequestHead(string method, string target, Version version, HttpHeaders headers)
    {
        Method = method;
        Target = target;
        Version = version;
        Headers = headers;
    }

    /// <summary>The request method token, case-sensitive (RFC 9110 §9.1).</summary>
    public string Method { get; set; } = "GET";

    /// <summary>The raw request-target as it appeared on the request line; see <see cref="RequestTargetParser"/>.</summary>
    public string Target { get; set; } = "/";

    /// <summary>The protocol version: <see cref="System.Net.HttpVersion.Version10"/> or <see cref="System.Net.HttpVersion.Version11"/>.</summary>
    public Version Version { get; set; } = System.Net.HttpVersion.Version11;

    /// <summary>The header fields in wire order.</summary>
    public HttpHeaders Headers { get; } = new();
}
