using System.Buffers;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Interpose.Core.Http;

namespace Interpose.Core.Flows.Har;

/// <summary>
/// Exports HTTP flows to HAR 1.2 and imports them back
/// (<see href="http://www.softwareishard.com/blog/har-12-spec/">the spec</see>).
/// </summary>
/// <remarks>
/// <para>
/// Export follows the spec: <c>content.text</c> is the decoded body (gzip, deflate and br undone; <c>content.size</c>
/// the decoded size, <c>compression</c> the bytes saved), in base64 with <c>encoding: "base64"</c> when it is not
/// UTF-8 text (or, for a body whose media type says a UTF-16 or UTF-32 charset, not text in that charset, which import
/// encodes it in again). Two extensions, both ignored by readers that do not know them: <c>postData.encoding: "base64"</c> for a
/// binary request body (HAR 1.2 has <c>encoding</c> on <c>content</c> only, and a lossy body cannot be replayed), and
/// <c>content._interposeEncoded: true</c> when the text is still content-encoded (zstd, which the BCL cannot decode, or a
/// body truncated by the recording cap), in which case <c>size</c> is the encoded size. Timings: <c>ssl</c> is included
/// in <c>connect</c> as the spec says; steps that did not happen are -1; <c>blocked</c> is not measured (-1).
/// </para>
/// <para>
/// Import is lenient where the spec allows (missing cookies, query strings, sizes, timings; unknown fields such as
/// Chromium's <c>_initiator</c>; HTTP/2 pseudo-header fields, which are skipped) and strict where a flow needs a value
/// (the method, the URL, the start time): the error names the entry and the field. A response with status 0 (what
/// browsers write for a request that got none) becomes a flow without a response. A flow's error is written on its
/// response as Chromium writes a failed request's (<c>_error</c>, the message), with its phase and transience as
/// extensions (<c>_interposeErrorPhase</c>, <c>_interposeErrorTransient</c>), and read back from them; a Chromium
/// <c>_error</c> alone gives a phase inferred from its net error name. A decoded body whose response says
/// <c>Content-Encoding: gzip</c>, <c>deflate</c> or <c>br</c> is encoded again, so the flow's body matches its headers
/// (the bytes differ from the original compression; the content is the same).
/// </para>
/// </remarks>
public static class HarFile
{
    /// <summary>The HAR version written and read.</summary>
    public const string Version = "1.2";

    /// <summary>The largest timing import accepts, in milliseconds: a year. No exchange takes longer, and a flow's times
    /// are sums of several timings, which must stay finite (JSON has no Infinity, so export and <c>--json</c> would fail).</summary>
    private const double MaxTimingMs = 366 * 24 * 3600 * 1000.0;

    /// <summary>
    /// The most decoded response bytes one export writes: past it, a body is written as recorded (content-encoded, in
    /// base64, marked <c>_interposeEncoded</c>), as one whose coding cannot be undone is. Four bodies at
    /// <see cref="ContentCoding.MaxDecodedBytes"/>: a store of small gzip bombs (61 KB that inflate to 60 MiB each)
    /// must not make an export decode gigabytes.
    /// </summary>
    public const long MaxDecodedBytesPerExport = 4L * ContentCoding.MaxDecodedBytes;

    /// <summary>Indented, as the serializer context writes (<see cref="HarJsonContext"/>).</summary>
    private static readonly JsonWriterOptions WriterOptions = new() { Indented = true };

    /// <summary>Exports <paramref name="flows"/> as a HAR 1.2 document (UTF-8 JSON, indented).</summary>
    /// <param name="flows">The flows, in the order the entries should appear.</param>
    /// <returns>The document's bytes.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    public static byte[] Export(IEnumerable<HttpFlow> flows) => Export(flows, MaxDecodedBytesPerExport);

    /// <summary><see cref="Export(IEnumerable{HttpFlow})"/> with another cap on decoded bytes (tests).</summary>
    internal static byte[] Export(IEnumerable<HttpFlow> flows, long maxDecodedBytes)
    {
        ArgumentNullException.ThrowIfNull(flows);
        using var output = new MemoryStream();
        using (var writer = new Utf8JsonWriter(output, WriterOptions))
        {
            var budget = maxDecodedBytes;
            WriteStart(writer);
            foreach (var flow in flows)
            {
                JsonSerializer.Serialize(writer, ToEntry(flow, ref budget), HarJsonContext.Default.HarEntry);
            }

            WriteEnd(writer);
        }

        return output.ToArray();
    }

    /// <summary>
    /// Writes <paramref name="flows"/> to <paramref name="output"/> as a HAR 1.2 document (UTF-8 JSON, indented), one
    /// entry at a time: only the entry being written is held (its decoded body and text), whatever the number of flows.
    /// </summary>
    /// <param name="flows">The flows, in the order the entries should appear.</param>
    /// <param name="output">Where the document goes; left open.</param>
    /// <param name="cancellationToken">Stops the export.</param>
    /// <returns>The number of entries written.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="IOException"><paramref name="output"/> could not be written.</exception>
    public static async Task<int> ExportAsync(IAsyncEnumerable<HttpFlow> flows, Stream output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flows);
        ArgumentNullException.ThrowIfNull(output);

        // NOTE: a Utf8JsonWriter over the stream itself would be simpler, but the serializer flushes the writer it is
        // given, a synchronous write that ASP.NET Core refuses on a response body. So the document goes into a buffer,
        // one entry at a time, and each entry is copied out asynchronously before the next flow is read.
        var buffer = new ArrayBufferWriter<byte>();
        await using var writer = new Utf8JsonWriter(buffer, WriterOptions);
        var budget = MaxDecodedBytesPerExport;
        var count = 0;
        WriteStart(writer);
        await foreach (var flow in flows.WithCancellation(cancellationToken))
        {
            JsonSerializer.Serialize(writer, ToEntry(flow, ref budget), HarJsonContext.Default.HarEntry);
            count++;
            await CopyOutAsync(writer, buffer, output, cancellationToken);
        }

        WriteEnd(writer);
        await CopyOutAsync(writer, buffer, output, cancellationToken);
        return count;
    }

    private static async Task CopyOutAsync(Utf8JsonWriter writer, ArrayBufferWriter<byte> buffer, Stream output, CancellationToken cancellationToken)
    {
        writer.Flush();
        await output.WriteAsync(buffer.WrittenMemory, cancellationToken);
        buffer.ResetWrittenCount();
    }

    /// <summary>The document up to the entries array: <c>{"log": {"version", "creator", "entries": [</c> (HarRoot's
    /// shape, written by hand so that the entries can follow one by one).</summary>
    private static void WriteStart(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("log");
        writer.WriteString("version", Version);
        writer.WritePropertyName("creator");
        JsonSerializer.Serialize(writer, new HarCreator { Name = "Interpose", Version = CreatorVersion() }, HarJsonContext.Default.HarCreator);
        writer.WriteStartArray("entries");
    }

    private static void WriteEnd(Utf8JsonWriter writer)
    {
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>Imports the entries of a HAR document as flows.</summary>
    /// <param name="utf8Json">The document.</param>
    /// <returns>One flow per entry, in order.</returns>
    /// <exception cref="HarFormatException">The document is not JSON, not HAR, or an entry lacks a field a flow
    /// needs or has one that is invalid; the message names the entry's index and the field.</exception>
    public static IReadOnlyList<HttpFlow> Import(ReadOnlySpan<byte> utf8Json)
    {
        HarRoot? root;
        try
        {
            root = JsonSerializer.Deserialize(utf8Json, HarJsonContext.Default.HarRoot);
        }
        catch (JsonException ex)
        {
            throw new HarFormatException($"HAR: not a valid HAR document at {ex.Path ?? "$"} (line {ex.LineNumber + 1}): {ex.Message}", ex);
        }

        var entries = root?.Log?.Entries ?? throw new HarFormatException(null, "log.entries", "missing");
        var flows = new List<HttpFlow>(entries.Count);
        for (var i = 0; i < entries.Count; i++)
        {
            flows.Add(FromEntry(entries[i] ?? throw new HarFormatException(i, "entry", "null"), i));
        }

        return flows;
    }

    // ---- export ----

    /// <summary>The flow's entry; <paramref name="budget"/> is what the export may still decode, and what this
    /// entry's response decodes is taken from it.</summary>
    private static HarEntry ToEntry(HttpFlow flow, ref long budget)
    {
        var request = flow.Request;
        var entry = new HarEntry
        {
            StartedDateTime = flow.StartedAt.ToString("O", CultureInfo.InvariantCulture),
            Request = new HarRequest
            {
                Method = request.Method,
                Url = request.Url,
                // The protocol the client really spoke: the request head is normalized to HTTP/1.1 inside the proxy.
                HttpVersion = HarVersion(flow.ClientHttpVersion),
                Cookies = RequestCookies(request.Headers),
                Headers = NameValues(request.Headers),
                QueryString = Query(request.Path),
                PostData = request.Body.Length == 0 ? null : PostData(request),
                HeadersSize = -1,
                BodySize = request.Body.Length,
            },
            // The response's protocol is the origin's, as mitmproxy's export has it; a hook's answer went out on the client's.
            Response = WithError(
                flow.Response is { } response
                    ? ToResponse(response, flow.IsSynthetic ? flow.ClientHttpVersion : flow.ServerHttpVersion ?? flow.ClientHttpVersion, ref budget)
                    : NoResponse(flow.Error),
                flow.Error),
            Timings = ToTimings(flow.Timings),
            // HAR 1.2 §entries: "IP address of the server"; a flow that never connected keeps the host name it tried,
            // which is no IP address (har-validator rejects it), so it is left out.
            ServerIpAddress = flow.Server is { } server && System.Net.IPAddress.TryParse(server.Host, out _) ? server.Host : null,
            Connection = flow.ServerConnectionId,
            Comment = flow.Comment,
            WebSocketMessages = flow.WebSocket is { } webSocket ? ToHarMessages(flow, webSocket) : null,
        };
        var t = entry.Timings;
        entry.Time = flow.Timings.Done ?? Round(Math.Max(0, t.Blocked) + Math.Max(0, t.Dns) + Math.Max(0, t.Connect) + t.Send + t.Wait + t.Receive);
        return entry;
    }

    /// <summary>The messages as Chromium writes them; a message's time is the flow's start, plus when the 101 came, plus
    /// its offset after the 101.</summary>
    private static List<HarWebSocketMessage> ToHarMessages(HttpFlow flow, FlowWebSocket webSocket)
    {
        var opened = flow.StartedAt.ToUnixTimeMilliseconds() + (flow.Timings.FirstByte ?? 0);
        var messages = new List<HarWebSocketMessage>(webSocket.Messages.Count);
        foreach (var m in webSocket.Messages)
        {
            messages.Add(new HarWebSocketMessage
            {
                Type = m.FromClient ? "send" : "receive",
                Time = Math.Round((opened + m.OffsetMs) / 1000, 6),
                Opcode = (int)m.Opcode,
                Data = m.Opcode == WebSocketOpcode.Text && !m.IsCompressed ? Encoding.UTF8.GetString(m.Content.Span) : Convert.ToBase64String(m.Content.Span),
            });
        }

        return messages;
    }

    private static FlowWebSocket? FromHarMessages(List<HarWebSocketMessage>? messages, DateTimeOffset started, FlowTimings timings, int index)
    {
        if (messages is null)
        {
            return null;
        }

        var opened = started.ToUnixTimeMilliseconds() + (timings.FirstByte ?? 0);
        var read = new List<FlowWebSocketMessage>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i] ?? throw new HarFormatException(index, $"_webSocketMessages[{i}]", "null");
            var fromClient = m.Type switch
            {
                "send" => true,
                "receive" => false,
                _ => throw new HarFormatException(index, $"_webSocketMessages[{i}].type", $"not send or receive: '{m.Type}'"),
            };
            if (!Enum.IsDefined((WebSocketOpcode)m.Opcode))
            {
                throw new HarFormatException(index, $"_webSocketMessages[{i}].opcode", $"not a WebSocket opcode: {m.Opcode}");
            }

            var opcode = (WebSocketOpcode)m.Opcode;
            byte[] content;
            try
            {
                content = opcode == WebSocketOpcode.Text ? Encoding.UTF8.GetBytes(m.Data ?? "") : Convert.FromBase64String(m.Data ?? "");
            }
            catch (FormatException)
            {
                throw new HarFormatException(index, $"_webSocketMessages[{i}].data", "not base64");
            }

            var offset = (m.Time * 1000) - opened;
            if (!double.IsFinite(offset) || offset > MaxTimingMs)
            {
                throw new HarFormatException(index, $"_webSocketMessages[{i}].time", $"not within a year of the WebSocket's opening: {m.Time.ToString(CultureInfo.InvariantCulture)}");
            }

            read.Add(new FlowWebSocketMessage(fromClient, opcode, Math.Max(0, offset), content, content.Length));
        }

        return new FlowWebSocket { Messages = read };
    }

    private static HarPostData PostData(FlowRequest request)
    {
        var content = request.Body.Content;
        var data = new HarPostData { MimeType = request.Headers.Get("Content-Type") ?? "" };
        (data.Text, data.Encoding) = Text(content.Span, data.MimeType);
        if (request.Body.IsTruncated)
        {
            data.Comment = Truncated(request.Body);
        }

        return data;
    }

    private static HarResponse ToResponse(FlowResponse response, string responseVersion, ref long budget)
    {
        var body = response.Body;
        var coding = response.Headers.Get("Content-Encoding");
        var content = new HarContent { MimeType = response.Headers.Get("Content-Type") ?? "" };
        if (!body.IsTruncated && ContentCoding.TryDecode(body.Content, coding, out var decoded, (int)Math.Min(ContentCoding.MaxDecodedBytes, budget)))
        {
            if (!string.IsNullOrWhiteSpace(coding))
            {
                budget -= decoded.Length;
            }

            content.Size = decoded.Length;
            if (decoded.Length != body.Length)
            {
                content.Compression = decoded.Length - body.Length;
            }

            (content.Text, content.Encoding) = Text(decoded.Span, content.MimeType);
        }
        else
        {
            // Not decodable here (zstd, a truncated prefix, corrupt data): the bytes as recorded, marked as such.
            content.Size = body.Length;
            content.Text = Convert.ToBase64String(body.Content.Span);
            content.Encoding = "base64";
            content.InterposeEncoded = !string.IsNullOrWhiteSpace(coding) ? true : null;
            content.Comment = body.IsTruncated ? Truncated(body) : "content-encoding " + coding + " not decoded";
        }

        return new HarResponse
        {
            Status = response.StatusCode,
            StatusText = response.Reason,
            HttpVersion = HarVersion(responseVersion),
            Cookies = ResponseCookies(response.Headers),
            Headers = NameValues(response.Headers),
            Content = content,
            RedirectUrl = response.Headers.Get("Location") ?? "",
            HeadersSize = -1,
            BodySize = body.Length,
        };
    }

    /// <summary>The flow's error on its response, where Chromium writes a failed request's (<c>_error</c>), with the
    /// phase and transience as Interpose extensions, so that an import gives the flow its error back.</summary>
    private static HarResponse WithError(HarResponse response, FlowError? error)
    {
        if (error is not null)
        {
            response.Error = error.Message;
            response.InterposeErrorPhase = error.Phase;
            response.InterposeErrorTransient = error.IsTransient;
        }

        return response;
    }

    /// <summary>
    /// The error of an imported entry's response: Interpose's own (message, phase, transience), or Chromium's
    /// <c>_error</c>, a net error name whose phase and transience are inferred for DNS, connection, TLS and reset
    /// errors (Chromium's net/base/net_error_list.h) and are "response" and permanent otherwise.
    /// </summary>
    private static FlowError? ErrorOf(HarResponse? response)
    {
        if (response?.Error is not { Length: > 0 } message)
        {
            return null;
        }

        var name = message.StartsWith("net::", StringComparison.Ordinal) ? message["net::".Length..] : message;
        var (phase, transient) = name switch
        {
            "ERR_NAME_NOT_RESOLVED" or "ERR_NAME_RESOLUTION_FAILED" => ("dns", false),
            "ERR_CONNECTION_REFUSED" or "ERR_CONNECTION_TIMED_OUT" or "ERR_CONNECTION_FAILED" or "ERR_ADDRESS_UNREACHABLE"
                or "ERR_INTERNET_DISCONNECTED" or "ERR_NETWORK_CHANGED" => ("connect", true),
            _ when name.StartsWith("ERR_CERT_", StringComparison.Ordinal) || name.StartsWith("ERR_SSL_", StringComparison.Ordinal) => ("tls", false),
            "ERR_CONNECTION_RESET" or "ERR_CONNECTION_CLOSED" or "ERR_EMPTY_RESPONSE" or "ERR_TIMED_OUT" => ("response", true),
            _ => ("response", false),
        };
        return new FlowError(response.InterposeErrorPhase ?? phase, message, response.InterposeErrorTransient ?? transient);
    }

    /// <summary>What browsers write for a request that got no response: status 0.</summary>
    private static HarResponse NoResponse(FlowError? error) => new()
    {
        Status = 0,
        Headers = [],
        Content = new HarContent { Size = 0, MimeType = "x-unknown" },
        Comment = error is null ? null : $"error in {error.Phase}: {error.Message}",
    };

    private static HarTimings ToTimings(FlowTimings t)
    {
        var connectEnd = t.TlsDone ?? t.Connected;
        var sendStart = connectEnd ?? t.DnsDone ?? 0;
        return new HarTimings
        {
            Blocked = -1,
            Dns = t.DnsDone is { } dns ? Round(dns) : -1,
            Connect = connectEnd is { } end ? Round(end - (t.DnsDone ?? 0)) : -1,
            Ssl = t.TlsDone is { } tls && t.Connected is { } connected ? Round(tls - connected) : -1,
            Send = t.RequestSent is { } sent ? Round(Math.Max(0, sent - sendStart)) : 0,
            Wait = t.FirstByte is { } first && t.RequestSent is { } s ? Round(Math.Max(0, first - s)) : 0,
            Receive = t.Done is { } done && t.FirstByte is { } f ? Round(Math.Max(0, done - f)) : 0,
        };
    }

    private static double Round(double ms) => Math.Round(ms, 3);

    /// <summary>How export's comment on a body cut at the recording cap begins; import reads such a body back cut.</summary>
    private const string TruncatedComment = "body truncated by the recording cap:";

    private static string Truncated(FlowBody body) =>
        $"{TruncatedComment} {body.Content.Length} of {body.Length} bytes, sha256 {body.Sha256 ?? "unknown"}";

    /// <summary>Text when the bytes are valid in the charset of <paramref name="mediaType"/> that import encodes the text
    /// in again (<see cref="WideCharset"/>; UTF-8 for any other), else base64.</summary>
    private static (string Text, string? Encoding) Text(ReadOnlySpan<byte> bytes, string? mediaType)
    {
        if (WideCharset(mediaType, strict: true) is { } wide)
        {
            try
            {
                return (wide.GetString(bytes), null);
            }
            catch (DecoderFallbackException)
            {
                return (Convert.ToBase64String(bytes), "base64");
            }
        }

        return System.Text.Unicode.Utf8.IsValid(bytes) ? (Encoding.UTF8.GetString(bytes), null) : (Convert.ToBase64String(bytes), "base64");
    }

    /// <summary>
    /// The UTF-16 or UTF-32 encoding that <paramref name="mediaType"/>'s charset parameter names (RFC 9110 §8.3.1: a
    /// parameter, its name case-insensitive, its value a token or a quoted string; §8.3.2: charset values are
    /// case-insensitive), or null for any other charset or none. A HAR's <c>text</c> is the body decoded by its charset,
    /// and <c>size</c> counts its bytes: a UTF-16 body's text has about half as many UTF-8 bytes as the body had, so it
    /// must be encoded in its own charset again, or it reads as cut. Only these Unicode encodings are built into .NET
    /// besides UTF-8, ASCII and Latin-1 (no code page provider, which Native AOT would have to carry); any other charset's
    /// text is taken as UTF-8, as before. "utf-16" and "utf-32" without an order are little-endian, as .NET and
    /// browsers read them without a byte order mark. <paramref name="strict"/>: decoding throws on invalid bytes.
    /// </summary>
    private static Encoding? WideCharset(string? mediaType, bool strict)
    {
        if (string.IsNullOrEmpty(mediaType))
        {
            return null;
        }

        foreach (var range in mediaType.AsSpan().Split(';'))
        {
            var parameter = mediaType.AsSpan(range).Trim();
            var equals = parameter.IndexOf('=');
            if (equals < 0 || !parameter[..equals].TrimEnd().Equals("charset", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var value = parameter[(equals + 1)..].TrimStart();
            if (value is ['"', .. var quoted, '"'])
            {
                value = quoted;
            }

            return value.ToString().ToUpperInvariant() switch
            {
                "UTF-16" or "UTF-16LE" => new UnicodeEncoding(bigEndian: false, byteOrderMark: false, throwOnInvalidBytes: strict),
                "UTF-16BE" => new UnicodeEncoding(bigEndian: true, byteOrderMark: false, throwOnInvalidBytes: strict),
                "UTF-32" or "UTF-32LE" => new UTF32Encoding(bigEndian: false, byteOrderMark: false, throwOnInvalidCharacters: strict),
                "UTF-32BE" => new UTF32Encoding(bigEndian: true, byteOrderMark: false, throwOnInvalidCharacters: strict),
                _ => null,
            };
        }

        return null;
    }

    private static List<HarNameValue> NameValues(HttpHeaders headers) =>
        [.. headers.Select(h => new HarNameValue { Name = h.Name, Value = h.Value })];

    private static List<HarNameValue> Query(string path)
    {
        var q = path.IndexOf('?', StringComparison.Ordinal);
        if (q < 0)
        {
            return [];
        }

        var query = path[(q + 1)..];
        var hash = query.IndexOf('#', StringComparison.Ordinal);
        query = hash >= 0 ? query[..hash] : query;
        var list = new List<HarNameValue>();
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            list.Add(new HarNameValue { Name = Unescape(eq < 0 ? pair : pair[..eq]), Value = eq < 0 ? "" : Unescape(pair[(eq + 1)..]) });
        }

        return list;
    }

    private static string Unescape(string s) => Uri.UnescapeDataString(s.Replace('+', ' '));

    // RFC 6265 §5.4: Cookie is "name=value" pairs separated by "; ".
    private static List<HarCookie> RequestCookies(HttpHeaders headers)
    {
        var cookies = new List<HarCookie>();
        foreach (var header in headers.GetValues("Cookie"))
        {
            foreach (var pair in header.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                cookies.Add(new HarCookie { Name = eq < 0 ? pair : pair[..eq], Value = eq < 0 ? "" : pair[(eq + 1)..] });
            }
        }

        return cookies;
    }

    // RFC 6265 §5.2: Set-Cookie is "name=value" then attributes.
    private static List<HarCookie> ResponseCookies(HttpHeaders headers)
    {
        var cookies = new List<HarCookie>();
        foreach (var header in headers.GetValues("Set-Cookie"))
        {
            var parts = header.Split(';', StringSplitOptions.TrimEntries);
            var eq = parts[0].IndexOf('=', StringComparison.Ordinal);
            var cookie = new HarCookie { Name = eq < 0 ? parts[0] : parts[0][..eq], Value = eq < 0 ? "" : parts[0][(eq + 1)..] };
            foreach (var attribute in parts.Skip(1))
            {
                var aeq = attribute.IndexOf('=', StringComparison.Ordinal);
                var name = aeq < 0 ? attribute : attribute[..aeq];
                var value = aeq < 0 ? "" : attribute[(aeq + 1)..];
                switch (name.ToLowerInvariant())
                {
                    case "path": cookie.Path = value; break;
                    case "domain": cookie.Domain = value; break;
                    case "httponly": cookie.HttpOnly = true; break;
                    case "secure": cookie.Secure = true; break;
                    case "expires":
                        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var expires))
                        {
                            cookie.Expires = expires.ToString("O", CultureInfo.InvariantCulture);
                        }

                        break;
                }
            }

            cookies.Add(cookie);
        }

        return cookies;
    }

    private static string CreatorVersion() =>
        typeof(HarFile).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";

    // ---- import ----

    private static HttpFlow FromEntry(HarEntry entry, int index)
    {
        var started = entry.StartedDateTime is { } text
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var parsed)
            ? parsed
            : throw new HarFormatException(index, "startedDateTime", entry.StartedDateTime is null ? "missing" : $"not an ISO 8601 date: '{entry.StartedDateTime}'");
        var harRequest = entry.Request ?? throw new HarFormatException(index, "request", "missing");
        var method = harRequest.Method is { Length: > 0 } m ? m : throw new HarFormatException(index, "request.method", "missing");

        // RFC 9110 §9.1: method = token. Replay writes the method and the URL into a request line: a CR, LF or space in
        // either would end it early and start a request the flow never showed.
        if (!HttpChars.IsToken(method))
        {
            throw new HarFormatException(index, "request.method", $"not an RFC 9110 token: '{Printable(method)}'");
        }

        var url = harRequest.Url ?? throw new HarFormatException(index, "request.url", "missing");
        var (scheme, host, port, path) = SplitUrl(url) ?? throw new HarFormatException(index, "request.url", $"not an absolute http or https URL: '{Printable(url)}'");

        // RFC 9112 §3.2: the request-target (here its absolute-form: host, path and query) has no whitespace or control
        // characters.
        if (HasControlOrSpace(host))
        {
            throw new HarFormatException(index, "request.url", $"the host holds a control character or a space: '{Printable(url)}'");
        }

        if (HasControlOrSpace(path))
        {
            throw new HarFormatException(index, "request.url", $"the path or query holds a control character or a space: '{Printable(url)}'");
        }

        var requestHeaders = Headers(harRequest.Headers, index, "request.headers");
        var request = new FlowRequest
        {
            Method = method,
            Scheme = scheme,
            Host = host,
            Port = port,
            Path = path,
            HttpVersion = HttpVersionOrDefault(harRequest.HttpVersion),
            Headers = requestHeaders,
            Body = RequestBody(harRequest, index),
        };

        FlowResponse? response = null;
        if (entry.Response is { Status: > 0 } harResponse)
        {
            var headers = Headers(harResponse.Headers, index, "response.headers");
            response = new FlowResponse
            {
                StatusCode = harResponse.Status is >= 100 and <= 999 ? harResponse.Status
                    : throw new HarFormatException(index, "response.status", $"not a status code: {harResponse.Status}"),
                Reason = harResponse.StatusText ?? "",
                HttpVersion = HttpVersionOrDefault(harResponse.HttpVersion),
                Headers = headers,
                Body = ResponseBody(harResponse.Content, headers, index),
            };
        }

        var timings = FromTimings(entry.Timings, index);
        return new HttpFlow
        {
            Id = FlowId.New(started),
            StartedAt = started,
            Request = request,
            Response = response,
            ClientHttpVersion = request.HttpVersion,
            ServerHttpVersion = response?.HttpVersion,
            Server = entry.ServerIpAddress is { Length: > 0 } ip ? new FlowEndpoint(ip.Trim('[', ']'), port) : null,
            ServerConnectionId = entry.Connection,
            Timings = timings,
            Comment = entry.Comment,
            Error = ErrorOf(entry.Response),
            WebSocket = FromHarMessages(entry.WebSocketMessages, started, timings, index),
        };
    }

    /// <summary>
    /// A recorded version as Chromium's DevTools writes it in a HAR (NetworkRequest's filteredProtocolName): HTTP/2 is
    /// <c>http/2.0</c>, HTTP/3 <c>http/3.0</c>; HTTP/1.x keeps its request-line form (<c>HTTP/1.1</c>), as Chromium
    /// takes it from the head's text. HAR 1.2 only says "request HTTP Version", so any string validates.
    /// </summary>
    private static string HarVersion(string version) => version switch
    {
        "HTTP/2" or "HTTP/2.0" => "http/2.0",
        "HTTP/3" or "HTTP/3.0" => "http/3.0",
        _ => version,
    };

    private static string HttpVersionOrDefault(string? version) => version switch
    {
        null or "" => "HTTP/1.1",
        // Chromium writes "h2" and "http/2.0" for HTTP/2, "h3" for HTTP/3.
        "h2" or "http/2.0" or "HTTP/2" => "HTTP/2.0",
        "h3" or "http/3.0" or "HTTP/3" => "HTTP/3.0",
        _ => version.StartsWith("http/", StringComparison.OrdinalIgnoreCase) ? "HTTP/" + version[5..] : version,
    };

    private static (string Scheme, string Host, int Port, string Path)? SplitUrl(string url)
    {
        var sep = url.IndexOf("://", StringComparison.Ordinal);
        if (sep <= 0)
        {
            return null;
        }

        var scheme = url[..sep].ToLowerInvariant();
        if (scheme is not ("http" or "https" or "ws" or "wss"))
        {
            return null;
        }

        scheme = scheme is "ws" ? "http" : scheme is "wss" ? "https" : scheme;
        var rest = url[(sep + 3)..];
        var end = rest.IndexOfAny(['/', '?', '#']);
        var authority = end < 0 ? rest : rest[..end];
        var path = end < 0 ? "/" : rest[end..];
        var hash = path.IndexOf('#', StringComparison.Ordinal);
        path = hash >= 0 ? path[..hash] : path;
        path = path.StartsWith('/') ? path : "/" + path;
        var at = authority.LastIndexOf('@');
        authority = at >= 0 ? authority[(at + 1)..] : authority;
        var port = Authority.DefaultPort(scheme);
        var colon = authority.LastIndexOf(':');
        if (colon > 0 && authority.IndexOf(']', colon) < 0)
        {
            if (!int.TryParse(authority.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
            {
                return null;
            }

            authority = authority[..colon];
        }

        var host = authority.Trim('[', ']');
        return host.Length == 0 ? null : (scheme, host, port, path);
    }

    /// <summary>True when <paramref name="text"/> holds a CTL (RFC 5234 B.1: %x00-1F / %x7F).</summary>
    private static bool HasControl(string text) => text.AsSpan().IndexOfAnyInRange('\0', '\u001F') >= 0 || text.Contains('\u007F', StringComparison.Ordinal);

    private static bool HasControlOrSpace(string text) => HasControl(text) || text.Contains(' ', StringComparison.Ordinal);

    /// <summary>The text for an error message, with control characters as <c>\xHH</c>, so the message stays one line.</summary>
    private static string Printable(string text)
    {
        if (!HasControl(text))
        {
            return text;
        }

        var sb = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (c is < ' ' or '\u007F')
            {
                sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    private static HttpHeaders Headers(List<HarNameValue>? list, int index, string field)
    {
        var headers = new HttpHeaders(list?.Count ?? 0);
        if (list is null)
        {
            return headers;
        }

        for (var i = 0; i < list.Count; i++)
        {
            var name = list[i]?.Name;
            if (string.IsNullOrEmpty(name))
            {
                throw new HarFormatException(index, $"{field}[{i}].name", "missing");
            }

            if (name.StartsWith(':'))
            {
                // HTTP/2 pseudo-header fields (RFC 9113 §8.3) are in the URL, method and status already.
                continue;
            }

            try
            {
                headers.Add(name, list[i].Value ?? "");
            }
            catch (ArgumentException ex)
            {
                throw new HarFormatException(index, $"{field}[{i}]", $"'{name}' is not a valid header field: {ex.Message}");
            }
        }

        return headers;
    }

    /// <summary>
    /// The request's body: whole, or cut when the entry says the body was longer than its text (<c>bodySize</c>, which
    /// export writes as the whole length) or carries export's truncation comment, so that replay refuses it as it
    /// refuses any body recorded cut instead of sending a <c>Content-Length</c> its bytes do not fill.
    /// </summary>
    private static FlowBody RequestBody(HarRequest request, int index)
    {
        var data = request.PostData;
        if (data is null)
        {
            // No postData but a body: its bytes are not in the file.
            return request.BodySize > 0 ? Cut([], request.BodySize, null) : FlowBody.Empty;
        }

        if (data.Text is { } text)
        {
            var bytes = Decode(text, data.Encoding, data.MimeType, index, "request.postData.text");
            return CutOrWhole(bytes, request.BodySize, data.Comment);
        }

        return FlowBody.FromBytes(FormBody(data, index));
    }

    private static byte[] FormBody(HarPostData data, int index)
    {
        // A form given as params only: rebuild the urlencoded body (RFC 1866 §8.2.1 form encoding).
        if (data.Params is not { Count: > 0 } parameters)
        {
            return [];
        }

        var pairs = new string[parameters.Count];
        for (var i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i] ?? throw new HarFormatException(index, $"request.postData.params[{i}]", "null");
            pairs[i] = Uri.EscapeDataString(p.Name ?? "") + "=" + Uri.EscapeDataString(p.Value ?? "");
        }

        return Encoding.UTF8.GetBytes(string.Join('&', pairs));
    }

    /// <summary>
    /// The response's body: whole (encoded again when the text is decoded and the response says a coding this side
    /// can apply), or cut, as it was, when <c>content.size</c> says the body was longer than its text (export writes
    /// the whole length there for a cut body; a browser leaves the text out but gives the size) or the content carries
    /// export's truncation comment.
    /// </summary>
    private static FlowBody ResponseBody(HarContent? content, HttpHeaders headers, int index)
    {
        if (content is null)
        {
            return FlowBody.Empty;
        }

        var bytes = content.Text is { } text ? Decode(text, content.Encoding, content.MimeType, index, "response.content.text") : [];
        if (IsCut(bytes, content.Size, content.Comment))
        {
            return CutOrWhole(bytes, content.Size, content.Comment);
        }

        var coding = headers.Get("Content-Encoding");
        return FlowBody.FromBytes(content.InterposeEncoded != true && !string.IsNullOrWhiteSpace(coding) && ContentCoding.CanDecode(coding)
            ? ContentCoding.Encode(bytes, coding)
            : bytes);
    }

    private static bool IsCut(byte[] bytes, long declaredSize, string? comment) =>
        declaredSize > bytes.Length || (comment?.StartsWith(TruncatedComment, StringComparison.Ordinal) ?? false);

    /// <summary>The bytes as a whole body, or as the first bytes of a body of <paramref name="declaredSize"/> (at least
    /// one byte more than they are when only the comment says so), with the whole body's SHA-256 when export's
    /// comment gives it.</summary>
    private static FlowBody CutOrWhole(byte[] bytes, long declaredSize, string? comment)
    {
        if (!IsCut(bytes, declaredSize, comment))
        {
            return FlowBody.FromBytes(bytes);
        }

        var sha256 = comment is not null && comment.StartsWith(TruncatedComment, StringComparison.Ordinal)
            && comment.LastIndexOf(" sha256 ", StringComparison.Ordinal) is var at and >= 0
            && comment[(at + " sha256 ".Length)..] is { Length: 64 } hex && hex.All(char.IsAsciiHexDigitLower)
            ? hex
            : null;
        return Cut(bytes, Math.Max(declaredSize, bytes.Length + 1L), sha256);
    }

    private static FlowBody Cut(byte[] bytes, long length, string? sha256) => new(bytes, length, sha256);

    /// <summary>The body's bytes from its text: base64, or the text in its media type's charset when that is UTF-16 or
    /// UTF-32 (<see cref="WideCharset"/>), else UTF-8.</summary>
    private static byte[] Decode(string text, string? encoding, string? mediaType, int index, string field)
    {
        if (string.Equals(encoding, "base64", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                return Convert.FromBase64String(text);
            }
            catch (FormatException)
            {
                throw new HarFormatException(index, field, "encoding is base64 but the text is not valid base64");
            }
        }

        return (WideCharset(mediaType, strict: false) ?? Encoding.UTF8).GetBytes(text);
    }

    private static FlowTimings FromTimings(HarTimings? t, int index)
    {
        if (t is null)
        {
            return FlowTimings.Unknown;
        }

        CheckTiming(t.Blocked, "blocked");
        CheckTiming(t.Dns, "dns");
        CheckTiming(t.Connect, "connect");
        CheckTiming(t.Send, "send");
        CheckTiming(t.Wait, "wait");
        CheckTiming(t.Receive, "receive");
        CheckTiming(t.Ssl, "ssl");

        var cursor = Math.Max(0, t.Blocked);
        double? dns = null, connected = null, tls = null;
        if (t.Dns >= 0)
        {
            cursor += t.Dns;
            dns = cursor;
        }

        if (t.Connect >= 0)
        {
            // HAR 1.2: connect includes ssl.
            connected = cursor + t.Connect - Math.Max(0, t.Ssl);
            tls = t.Ssl >= 0 ? cursor + t.Connect : null;
            cursor += t.Connect;
        }

        var sent = cursor + Math.Max(0, t.Send);
        var first = sent + Math.Max(0, t.Wait);
        var done = first + Math.Max(0, t.Receive);
        return new FlowTimings(dns, connected, tls, sent, first, done);

        // HAR 1.2 §timings: each is a number of milliseconds, -1 when it does not apply.
        void CheckTiming(double value, string name)
        {
            if (!double.IsFinite(value) || Math.Abs(value) > MaxTimingMs)
            {
                throw new HarFormatException(index, "timings." + name, $"not a duration of at most a year in milliseconds: {value.ToString(CultureInfo.InvariantCulture)}");
            }
        }
    }
}
