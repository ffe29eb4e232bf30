namespace Interpose.Core.Http;

/// <summary>The head of an HTTP/1.x response: status line and header section.</summary>
public sealed class HttpResponseHead
{
    /// <summary>Creates an empty response head (<c>HTTP/1.1 200 OK</c>, no headers).</summary>
    public HttpResponseHead()
    {
    }

    internal HttpResponseHead(Version version, int statusCode, string reasonPhrase, HttpHeaders headers)
    {
        Version = version;
        StatusCode = statusCode;
        ReasonPhrase = reasonPhrase;
        Headers = headers;
    }

    /// <summary>The protocol version: <see cref="System.Net.HttpVersion.Version10"/> or <see cref="System.Net.HttpVersion.Version11"/>.</summary>
    public Version Version { get; set; } = System.Net.HttpVersion.Version11;

    /// <summary>The three-digit status code (RFC 9110 §15: 100..599).</summary>
    public int StatusCode { get; set; } = 200;

    /// <summary>The reason phrase, possibly empty (RFC 9112 §4).</summary>
    public string ReasonPhrase { get; set; } = "OK";

    /// <summary>The header fields in wire order.</summary>
    public HttpHeaders Headers { get; } = new();
}
