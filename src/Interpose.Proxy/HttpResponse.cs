using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Interpose.Core.Http;

namespace Interpose.Proxy;

/// <summary>A response as received from the origin, or made by a hook.</summary>
public sealed class HttpResponse : HttpMessage
{
    /// <summary>The lowest final status (RFC 9110 §15: 1xx are interim).</summary>
    internal const int MinFinalStatus = 200;

    /// <summary>The highest status RFC 9110 §15 defines a class for.</summary>
    internal const int MaxFinalStatus = 599;

    private int _statusCode;
    private string _reasonPhrase;

    /// <remarks>Takes the origin's head as it came (a 101 included); a hook's changes go through the checked setters.</remarks>
    internal HttpResponse(int statusCode, string reasonPhrase, Version version, HttpHeaders headers)
        : base(headers, version)
    {
        _statusCode = statusCode;
        _reasonPhrase = reasonPhrase;
    }

    /// <summary>Creates a response with an empty body.</summary>
    /// <param name="statusCode">The status code, 200 to 599.</param>
    /// <exception cref="ArgumentOutOfRangeException">The status code is out of range.</exception>
    public HttpResponse(int statusCode)
        : this(CheckStatus(statusCode), ReasonPhrases.For(statusCode), new Version(1, 1), new HttpHeaders())
    {
        SetBody(ReadOnlyMemory<byte>.Empty);
    }

    /// <summary>The status code. A hook may set a final status only, 200 to 599.</summary>
    /// <remarks>
    /// The response a hook sees is the final one: a 1xx sent in its place would be taken by the client as interim, and
    /// the next response on the connection as this request's answer (RFC 9110 §15.2). The body is framed for the status
    /// the response leaves with: none after a 204 or a 304 (RFC 9112 §6.3), whatever the origin sent.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">Set to a status outside 200..599.</exception>
    public int StatusCode
    {
        get => _statusCode;
        set => _statusCode = CheckStatus(value);
    }

    /// <summary>The reason phrase sent after the status code to an HTTP/1.1 client (HTTP/2 has none); may be empty.</summary>
    /// <exception cref="ArgumentNullException">Set to null.</exception>
    /// <exception cref="ArgumentException">Set to a text with CR, LF or another control character, or one above U+00FF.</exception>
    public string ReasonPhrase
    {
        get => _reasonPhrase;
        set
        {
            ArgumentNullException.ThrowIfNull(value);

            // RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ); a CR or LF would end the status line
            // early and start a header section of the hook's making.
            _reasonPhrase = Http1Parser.IsValidReasonPhrase(value) ? value : throw new ArgumentException("The reason phrase must not contain CR, LF or other control characters, nor characters above U+00FF (RFC 9112 §4).", nameof(value));
        }
    }

    /// <summary>Creates a response with a text body.</summary>
    /// <param name="statusCode">The status code, 200 to 599.</param>
    /// <param name="text">The body.</param>
    /// <param name="contentType">The media type (charset=utf-8 is added to text types).</param>
    /// <returns>The response.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The status code is out of range.</exception>
    public static HttpResponse Text(int statusCode, string text, string contentType = "text/plain")
    {
        var response = new HttpResponse(statusCode);
        response.Headers.Add("Content-Type", contentType + "; charset=utf-8");
        response.SetBody(Encoding.UTF8.GetBytes(text));
        return response;
    }

    /// <summary>Creates a response whose body is <paramref name="value"/> as JSON.</summary>
    /// <typeparam name="T">The type of the value.</typeparam>
    /// <param name="statusCode">The status code, 200 to 599.</param>
    /// <param name="value">The value to serialize.</param>
    /// <returns>The response.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The status code is out of range.</exception>
    [RequiresUnreferencedCode(ReflectionJson)]
    [RequiresDynamicCode(ReflectionJson)]
    public static HttpResponse Json<T>(int statusCode, T value) =>
        JsonResponse(statusCode, JsonSerializer.SerializeToUtf8Bytes(value, JsonSerializerOptions.Web));

    /// <summary>Creates a response whose body is <paramref name="value"/> as JSON, with source-generated metadata.</summary>
    /// <typeparam name="T">The type of the value.</typeparam>
    /// <param name="statusCode">The status code, 200 to 599.</param>
    /// <param name="value">The value to serialize.</param>
    /// <param name="typeInfo">The metadata for <typeparamref name="T"/>, from a <c>JsonSerializerContext</c>.</param>
    /// <returns>The response.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The status code is out of range.</exception>
    public static HttpResponse Json<T>(int statusCode, T value, JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return JsonResponse(statusCode, JsonSerializer.SerializeToUtf8Bytes(value, typeInfo));
    }

    private static HttpResponse JsonResponse(int statusCode, byte[] json)
    {
        var response = new HttpResponse(statusCode);
        response.Headers.Add("Content-Type", "application/json");
        response.SetBody(json);
        return response;
    }

    /// <remarks>
    /// A streamed response's head is written to an HTTP/1.x client with this version, after the response counts as
    /// started: one the writer cannot put on a status line (RFC 9112 §4) would leave the client with no answer at all.
    /// </remarks>
    private protected override string? RefuseVersion(Version version) =>
        version == System.Net.HttpVersion.Version10 || version == System.Net.HttpVersion.Version11 ? null : "A response's version must be 1.0 or 1.1 (RFC 9112 §2.3).";

    private static int CheckStatus(int statusCode) =>
        IsFinalStatus(statusCode) ? statusCode : throw new ArgumentOutOfRangeException(nameof(statusCode), statusCode, "A final status code (200-599) is required.");

    /// <summary>Whether <paramref name="statusCode"/> is a final status a response may leave the proxy with.</summary>
    internal static bool IsFinalStatus(int statusCode) => statusCode is >= MinFinalStatus and <= MaxFinalStatus;
}
