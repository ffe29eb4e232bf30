using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Interpose.Core.Http;

namespace Interpose.Proxy;

/// <summary>A response as received from the origin, or made by a hook.</summary>
public sealed class HttpResponse : HttpMessage
{
    internal HttpResponse(int statusCode, string reasonPhrase, Version version, HttpHeaders headers)
        : base(headers, version)
    {
        StatusCode = statusCode;
        ReasonPhrase = reasonPhrase;
    }

    /// <summary>Creates a response with an empty body.</summary>
    /// <param name="statusCode">The status code, 200 to 599.</param>
    /// <exception cref="ArgumentOutOfRangeException">The status code is out of range.</exception>
    public HttpResponse(int statusCode)
        : this(CheckStatus(statusCode), ReasonPhrases.For(statusCode), new Version(1, 1), new HttpHeaders())
    {
        SetBody(ReadOnlyMemory<byte>.Empty);
    }

    /// <summary>The status code.</summary>
    public int StatusCode { get; set; }

    /// <summary>The reason phrase sent after the status code.</summary>
    public string ReasonPhrase { get; set; }

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

    private static int CheckStatus(int statusCode) =>
        statusCode is >= 200 and <= 599 ? statusCode : throw new ArgumentOutOfRangeException(nameof(statusCode), statusCode, "A final status code (200-599) is required.");
}
