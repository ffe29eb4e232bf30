using System.Text.Json.Serialization;

namespace Interpose.Core.Flows.Har;

// The HAR 1.2 document (http://www.softwareishard.com/blog/har-12-spec/), as read and written. Every member is
// nullable or defaulted so that reading is lenient; HarFile checks what an entry needs and names what is missing.
// Unknown members (Chromium's _initiator, _resourceType, _transferSize, ...) are ignored when reading.
#pragma warning disable CA1002, CA2227 // DTOs for the serializer: settable lists are what it fills.

internal sealed class HarRoot
{
    public HarLog? Log { get; set; }
}

internal sealed class HarLog
{
    public string? Version { get; set; }

    public HarCreator? Creator { get; set; }

    public List<HarEntry>? Entries { get; set; }
}

internal sealed class HarCreator
{
    public string Name { get; set; } = "";

    public string Version { get; set; } = "";
}

internal sealed class HarEntry
{
    public string? StartedDateTime { get; set; }

    public double Time { get; set; }

    public HarRequest? Request { get; set; }

    public HarResponse? Response { get; set; }

    public HarCache Cache { get; set; } = new();

    public HarTimings? Timings { get; set; }

    [JsonPropertyName("serverIPAddress")]
    public string? ServerIpAddress { get; set; }

    public string? Connection { get; set; }

    public string? Comment { get; set; }

    /// <summary>Chromium DevTools' extension for a WebSocket's messages.</summary>
    [JsonPropertyName("_webSocketMessages")]
    public List<HarWebSocketMessage>? WebSocketMessages { get; set; }
}

/// <summary>One WebSocket message as Chromium DevTools writes it in a HAR: <c>type</c> "send" (from the client) or
/// "receive", <c>time</c> in seconds since the Unix epoch, <c>opcode</c> (RFC 6455 §5.2), <c>data</c> the text, or for a
/// binary message its bytes in base64.</summary>
internal sealed class HarWebSocketMessage
{
    public string? Type { get; set; }

    public double Time { get; set; }

    public int Opcode { get; set; }

    public string? Data { get; set; }
}

internal sealed class HarCache;

internal sealed class HarRequest
{
    public string? Method { get; set; }

    public string? Url { get; set; }

    public string? HttpVersion { get; set; }

    public List<HarCookie> Cookies { get; set; } = [];

    public List<HarNameValue>? Headers { get; set; }

    public List<HarNameValue> QueryString { get; set; } = [];

    public HarPostData? PostData { get; set; }

    public long HeadersSize { get; set; } = -1;

    public long BodySize { get; set; } = -1;
}

internal sealed class HarResponse
{
    public int Status { get; set; }

    public string StatusText { get; set; } = "";

    public string HttpVersion { get; set; } = "";

    public List<HarCookie> Cookies { get; set; } = [];

    public List<HarNameValue>? Headers { get; set; }

    public HarContent? Content { get; set; }

    [JsonPropertyName("redirectURL")]
    public string RedirectUrl { get; set; } = "";

    public long HeadersSize { get; set; } = -1;

    public long BodySize { get; set; } = -1;

    public string? Comment { get; set; }

    /// <summary>Chromium's field for a request that failed (<c>net::ERR_CONNECTION_REFUSED</c>); Interpose writes its
    /// error's message here.</summary>
    [JsonPropertyName("_error")]
    public string? Error { get; set; }

    /// <summary>An Interpose extension: the phase the exchange failed in (<see cref="FlowError.Phase"/>).</summary>
    [JsonPropertyName("_interposeErrorPhase")]
    public string? InterposeErrorPhase { get; set; }

    /// <summary>An Interpose extension: whether the failure was transient (<see cref="FlowError.IsTransient"/>).</summary>
    [JsonPropertyName("_interposeErrorTransient")]
    public bool? InterposeErrorTransient { get; set; }
}

internal sealed class HarCookie
{
    public string Name { get; set; } = "";

    public string Value { get; set; } = "";

    public string? Path { get; set; }

    public string? Domain { get; set; }

    public string? Expires { get; set; }

    public bool? HttpOnly { get; set; }

    public bool? Secure { get; set; }
}

internal sealed class HarNameValue
{
    public string? Name { get; set; }

    public string? Value { get; set; }
}

internal sealed class HarPostData
{
    public string MimeType { get; set; } = "";

    public string? Text { get; set; }

    public List<HarNameValue>? Params { get; set; }

    /// <summary>An extension (HAR 1.2 has it on content only): "base64" when the text is a binary body in base64.</summary>
    public string? Encoding { get; set; }

    public string? Comment { get; set; }
}

internal sealed class HarContent
{
    public long Size { get; set; }

    public long? Compression { get; set; }

    public string MimeType { get; set; } = "";

    public string? Text { get; set; }

    public string? Encoding { get; set; }

    public string? Comment { get; set; }

    /// <summary>An Interpose extension: the text is the body still content-encoded (a coding the BCL cannot undo,
    /// such as zstd, or a truncated body), not decoded as HAR 1.2 says.</summary>
    [JsonPropertyName("_interposeEncoded")]
    public bool? InterposeEncoded { get; set; }
}

internal sealed class HarTimings
{
    public double Blocked { get; set; } = -1;

    public double Dns { get; set; } = -1;

    public double Connect { get; set; } = -1;

    public double Send { get; set; }

    public double Wait { get; set; }

    public double Receive { get; set; }

    public double Ssl { get; set; } = -1;
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true,
    NumberHandling = JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(HarRoot))]
internal sealed partial class HarJsonContext : JsonSerializerContext;
