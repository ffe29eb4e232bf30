using System.Buffers;
using System.Text;
using System.Text.Json;
using Interpose.Core.Filters;
using Interpose.Core.Http;

namespace Interpose.Core.Flows;

/// <summary>
/// Writes a flow as <see cref="FlowJson"/>'s JSON by walking it with the writer's own calls: the same bytes as
/// <see cref="JsonSerializer"/> with <see cref="FlowJsonContext"/> (the tests compare them flow by flow), at a fraction
/// of its cost. The generic serializer was 4-5% of the proxy's CPU with recording on (metadata lookups, a converter
/// call and a null check per property); every recorded exchange is written once.
/// </summary>
/// <remarks>
/// The serializer's rules, kept here: camelCase names; a derived record's own properties before its base's; the
/// <c>type</c> discriminator first; nulls omitted, every other value written (empty strings, empty lists, zero and
/// false included); enums by name (a value without a name as its number); byte arrays and memory in base64; header
/// fields as <c>[name, value]</c> pairs. A property added to a flow record must be added here too: the equality test
/// of a fully populated flow fails until it is.
/// </remarks>
internal static class FlowJsonWriter
{
    /// <summary>Writes <paramref name="flow"/>; without <paramref name="bytes"/>, as if every body's content and every
    /// certificate chain were empty (lengths and hashes kept): what a store keeps beside the bytes it stores apart, with
    /// no copy of the flow made to strip them.</summary>
    public static void Write(Utf8JsonWriter writer, Flow flow, bool bytes = true)
    {
        writer.WriteStartObject();
        switch (flow)
        {
            case HttpFlow http:
                writer.WriteString("type"u8, "http"u8);
                WriteHttp(writer, http, bytes);
                break;
            case TunnelFlow tunnel:
                writer.WriteString("type"u8, "tunnel"u8);
                WriteTunnel(writer, tunnel);
                break;
            default:
                throw new NotSupportedException($"{flow.GetType().Name} is not a known kind of flow.");
        }

        writer.WriteString("id"u8, flow.Id);
        writer.WriteString("startedAt"u8, flow.StartedAt);
        WriteEndpoint(writer, "client"u8, flow.Client);
        WriteEndpoint(writer, "server"u8, flow.Server);
        if (flow.Error is { } error)
        {
            writer.WriteStartObject("error"u8);
            WriteText(writer, "phase"u8, error.Phase);
            writer.WriteString("message"u8, error.Message);
            writer.WriteBoolean("isTransient"u8, error.IsTransient);
            writer.WriteEndObject();
        }

        if (flow.Tags is { } tags)
        {
            writer.WriteStartObject("tags"u8);
            foreach (var (name, value) in tags)
            {
                writer.WriteString(name, value);
            }

            writer.WriteEndObject();
        }
        WriteOptional(writer, "marker"u8, flow.Marker);
        WriteOptional(writer, "comment"u8, flow.Comment);
        writer.WritePropertyName("replay"u8);
        switch (flow.Replay)
        {
            case FilterReplayKind.None: writer.WriteStringValue("None"u8); break;
            case FilterReplayKind.Request: writer.WriteStringValue("Request"u8); break;
            case FilterReplayKind.Response: writer.WriteStringValue("Response"u8); break;
            default: writer.WriteNumberValue((int)flow.Replay); break;
        }

        writer.WriteEndObject();
    }

    private static void WriteHttp(Utf8JsonWriter writer, HttpFlow flow, bool bytes)
    {
        var request = flow.Request;
        writer.WriteStartObject("request"u8);
        WriteText(writer, "method"u8, request.Method);
        WriteText(writer, "scheme"u8, request.Scheme);
        WriteText(writer, "host"u8, request.Host);
        writer.WriteNumber("port"u8, request.Port);
        WriteText(writer, "path"u8, request.Path);
        WriteMessage(writer, request, bytes);
        writer.WriteEndObject();

        if (flow.Response is { } response)
        {
            writer.WriteStartObject("response"u8);
            writer.WriteNumber("statusCode"u8, response.StatusCode);
            WriteOptional(writer, "reason"u8, response.Reason);
            WriteMessage(writer, response, bytes);
            writer.WriteEndObject();
        }

        WriteText(writer, "clientHttpVersion"u8, flow.ClientHttpVersion);
        WriteOptional(writer, "serverHttpVersion"u8, flow.ServerHttpVersion);
        writer.WriteNumber("streamId"u8, flow.StreamId);
        WriteOptional(writer, "clientConnectionId"u8, flow.ClientConnectionId);
        WriteOptional(writer, "serverConnectionId"u8, flow.ServerConnectionId);
        writer.WriteBoolean("isSynthetic"u8, flow.IsSynthetic);
        if (flow.Timings is { } timings)
        {
            writer.WriteStartObject("timings"u8);
            WriteOptional(writer, "dnsDone"u8, timings.DnsDone);
            WriteOptional(writer, "connected"u8, timings.Connected);
            WriteOptional(writer, "tlsDone"u8, timings.TlsDone);
            WriteOptional(writer, "requestSent"u8, timings.RequestSent);
            WriteOptional(writer, "firstByte"u8, timings.FirstByte);
            WriteOptional(writer, "done"u8, timings.Done);
            writer.WriteEndObject();
        }

        WriteTls(writer, "clientTls"u8, flow.ClientTls, bytes);
        WriteTls(writer, "serverTls"u8, flow.ServerTls, bytes);
        if (flow.WebSocket is { } webSocket)
        {
            WriteWebSocket(writer, webSocket);
        }
    }

    private static void WriteMessage(Utf8JsonWriter writer, FlowMessage message, bool bytes)
    {
        WriteText(writer, "httpVersion"u8, message.HttpVersion);
        WriteHeaders(writer, "headers"u8, message.Headers);
        if (message.Body is { } body)
        {
            writer.WriteStartObject("body"u8);
            writer.WriteBase64String("content"u8, bytes ? body.Content.Span : []);
            writer.WriteNumber("length"u8, body.Length);
            WriteOptional(writer, "sha256"u8, body.Sha256);
            writer.WriteEndObject();
        }

        WriteHeaders(writer, "trailers"u8, message.Trailers);
    }

    private static void WriteHeaders(Utf8JsonWriter writer, ReadOnlySpan<byte> name, HttpHeaders? headers)
    {
        if (headers is null)
        {
            return;
        }

        writer.WritePropertyName(name);
        if (writer.Options.Encoder is not null || writer.Options.Indented)
        {
            WriteHeaderPairs(writer, headers);
            return;
        }

        // The default encoder's output for a field whose name and value need no escaping is the text itself between
        // quotes: such a pair is written as one raw value, ["name","value"], narrowed from the string in one pass. Header
        // fields are nearly always like that; any other goes through the writer's escaping.
        Span<byte> pair = stackalloc byte[MaxRawPairBytes];
        writer.WriteStartArray();
        foreach (var header in headers)
        {
            var length = header.Name.Length + header.Value.Length + RawPairFraming;
            if (length > pair.Length || header.Name.AsSpan().ContainsAnyExcept(Unescaped) || header.Value.AsSpan().ContainsAnyExcept(Unescaped))
            {
                writer.WriteStartArray();
                writer.WriteStringValue(header.Name);
                writer.WriteStringValue(header.Value);
                writer.WriteEndArray();
                continue;
            }

            "[\""u8.CopyTo(pair);
            var at = 2 + Encoding.ASCII.GetBytes(header.Name, pair[2..]);
            "\",\""u8.CopyTo(pair[at..]);
            at += 3;
            at += Encoding.ASCII.GetBytes(header.Value, pair[at..]);
            "\"]"u8.CopyTo(pair[at..]);
            writer.WriteRawValue(pair[..length], skipInputValidation: true);
        }

        writer.WriteEndArray();
    }

    /// <summary>The characters <see cref="System.Text.Encodings.Web.JavaScriptEncoder.Default"/> (the writer's default)
    /// writes as they are: printable ASCII except the HTML-sensitive <c>" &amp; ' &lt; &gt;</c>, and <c>+ \ `</c>.</summary>
    private static readonly SearchValues<char> Unescaped = SearchValues.Create(
        string.Concat(Enumerable.Range(0x20, 0x7F - 0x20).Select(c => (char)c).Where(c => !"\"&'<>+\\`".Contains(c))));

    /// <summary>The quotes, comma and brackets of a raw pair: <c>["</c>, <c>","</c>, <c>"]</c>.</summary>
    private const int RawPairFraming = 7;

    /// <summary>The longest pair written raw, on the stack; a longer one (a large cookie) goes through the writer.</summary>
    private const int MaxRawPairBytes = 512;

    /// <summary>Header fields as a JSON array of <c>[name, value]</c> pairs, in order (<see cref="HttpHeadersJsonConverter"/>'s
    /// form), every string through the writer's escaping: the reference the raw pairs above are tested against.</summary>
    public static void WriteHeaderPairs(Utf8JsonWriter writer, HttpHeaders headers)
    {
        writer.WriteStartArray();
        foreach (var header in headers)
        {
            writer.WriteStartArray();
            writer.WriteStringValue(header.Name);
            writer.WriteStringValue(header.Value);
            writer.WriteEndArray();
        }

        writer.WriteEndArray();
    }

    private static void WriteTls(Utf8JsonWriter writer, ReadOnlySpan<byte> name, FlowTls? tls, bool bytes)
    {
        if (tls is null)
        {
            return;
        }

        writer.WriteStartObject(name);
        WriteOptional(writer, "version"u8, tls.Version);
        WriteOptional(writer, "cipherSuite"u8, tls.CipherSuite);
        WriteOptional(writer, "alpn"u8, tls.Alpn);
        WriteOptional(writer, "sni"u8, tls.Sni);
        if (tls.CertificateChain is { } chain)
        {
            writer.WriteStartArray("certificateChain"u8);
            foreach (var certificate in bytes ? chain : [])
            {
                if (certificate is null)
                {
                    writer.WriteNullValue();
                }
                else
                {
                    writer.WriteBase64StringValue(certificate);
                }
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
    }

    private static void WriteWebSocket(Utf8JsonWriter writer, FlowWebSocket webSocket)
    {
        writer.WriteStartObject("webSocket"u8);
        if (webSocket.Messages is { } messages)
        {
            writer.WriteStartArray("messages"u8);
            foreach (var message in messages)
            {
                if (message is null)
                {
                    writer.WriteNullValue();
                    continue;
                }

                writer.WriteStartObject();
                writer.WriteBoolean("fromClient"u8, message.FromClient);
                writer.WritePropertyName("opcode"u8);
                switch (message.Opcode)
                {
                    case WebSocketOpcode.Text: writer.WriteStringValue("Text"u8); break;
                    case WebSocketOpcode.Binary: writer.WriteStringValue("Binary"u8); break;
                    case WebSocketOpcode.Close: writer.WriteStringValue("Close"u8); break;
                    case WebSocketOpcode.Ping: writer.WriteStringValue("Ping"u8); break;
                    case WebSocketOpcode.Pong: writer.WriteStringValue("Pong"u8); break;
                    default: writer.WriteNumberValue((int)message.Opcode); break;
                }

                writer.WriteNumber("offsetMs"u8, message.OffsetMs);
                writer.WriteBase64String("content"u8, message.Content.Span);
                writer.WriteNumber("length"u8, message.Length);
                writer.WriteBoolean("isCompressed"u8, message.IsCompressed);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteNumber("droppedMessages"u8, webSocket.DroppedMessages);
        WriteOptional(writer, "closeCode"u8, webSocket.CloseCode);
        WriteOptional(writer, "closeReason"u8, webSocket.CloseReason);
        if (webSocket.ClosedByClient is { } closedByClient)
        {
            writer.WriteBoolean("closedByClient"u8, closedByClient);
        }

        WriteOptional(writer, "parseError"u8, webSocket.ParseError);
        writer.WriteEndObject();
    }

    private static void WriteTunnel(Utf8JsonWriter writer, TunnelFlow flow)
    {
        writer.WritePropertyName("kind"u8);
        switch (flow.Kind)
        {
            case TunnelKind.TlsPassthrough: writer.WriteStringValue("TlsPassthrough"u8); break;
            case TunnelKind.Raw: writer.WriteStringValue("Raw"u8); break;
            case TunnelKind.Upgraded: writer.WriteStringValue("Upgraded"u8); break;
            default: writer.WriteNumberValue((int)flow.Kind); break;
        }

        WriteText(writer, "host"u8, flow.Host);
        writer.WriteNumber("port"u8, flow.Port);
        WriteOptional(writer, "sni"u8, flow.Sni);
        writer.WriteNumber("bytesFromClient"u8, flow.BytesFromClient);
        writer.WriteNumber("bytesFromServer"u8, flow.BytesFromServer);
        WriteOptional(writer, "durationMs"u8, flow.DurationMs);
    }

    private static void WriteEndpoint(Utf8JsonWriter writer, ReadOnlySpan<byte> name, FlowEndpoint? endpoint)
    {
        if (endpoint is null)
        {
            return;
        }

        writer.WriteStartObject(name);
        WriteText(writer, "host"u8, endpoint.Host);
        writer.WriteNumber("port"u8, endpoint.Port);
        writer.WriteEndObject();
    }

    private static void WriteOptional(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string? value)
    {
        if (value is not null)
        {
            WriteText(writer, name, value);
        }
    }

    /// <summary><c>"name":"value"</c>; a value that needs no escaping is written raw, as the pairs of header fields are.</summary>
    private static void WriteText(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string value)
    {
        if (value.Length + 2 > MaxRawPairBytes || writer.Options.Encoder is not null || writer.Options.Indented
            || value.AsSpan().ContainsAnyExcept(Unescaped))
        {
            writer.WriteString(name, value);
            return;
        }

        Span<byte> quoted = stackalloc byte[value.Length + 2];
        quoted[0] = (byte)'"';
        Encoding.ASCII.GetBytes(value, quoted[1..]);
        quoted[^1] = (byte)'"';
        writer.WritePropertyName(name);
        writer.WriteRawValue(quoted, skipInputValidation: true);
    }

    private static void WriteOptional(Utf8JsonWriter writer, ReadOnlySpan<byte> name, double? value)
    {
        if (value is { } number)
        {
            writer.WriteNumber(name, number);
        }
    }

    private static void WriteOptional(Utf8JsonWriter writer, ReadOnlySpan<byte> name, int? value)
    {
        if (value is { } number)
        {
            writer.WriteNumber(name, number);
        }
    }
}
