using System.Buffers;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Store;

namespace Interpose.Cli;

/// <summary>How <c>interpose flows</c> prints a flow: one summary line (like the flow log), one JSON object, or the
/// whole flow with its bodies decoded and pretty-printed.</summary>
internal static class FlowText
{
    /// <summary>Bytes per line of a hex dump: 16, as <c>xxd</c> and <c>hexdump -C</c>.</summary>
    private const int HexBytesPerLine = 16;

    /// <summary>The most body bytes <c>show</c> prints as a hex dump: 64 KiB (4096 lines); the rest is counted.</summary>
    private const int MaxHexBytes = 64 * 1024;

    private static readonly JsonWriterOptions Indented = new() { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary><c>ID CLIENT METHOD URL -> STATUS SIZE DURATIONms</c>, or <c>-> error (phase): reason</c>, as the flow log.</summary>
    public static string Summary(Flow flow) => Summary(FlowListing.From(flow));

    /// <summary><see cref="Summary(Flow)"/> from what a store lists (no JSON read).</summary>
    public static string Summary(FlowListing flow)
    {
        var sb = new StringBuilder(160);
        sb.Append(flow.Id).Append(' ').Append(flow.Client ?? "-").Append(' ');
        if (flow.IsHttp)
        {
            sb.Append(flow.Method).Append(' ').Append(flow.Url);
            if (flow.ErrorPhase is not null)
            {
                sb.Append(" -> error (").Append(flow.ErrorPhase).Append("): ").Append(flow.ErrorMessage);
            }
            else if (flow.StatusCode is { } status)
            {
                sb.Append(" -> ").Append(status).Append(' ').Append(Size(flow.ResponseBytes ?? 0));
                if (flow.DurationMs is { } done)
                {
                    sb.Append(' ').Append(done.ToString("0.0", CultureInfo.InvariantCulture)).Append("ms");
                }
            }
        }
        else
        {
            // mitmproxy's TCP flow line: the endpoints, then what moved; an error says where it failed. (The SNI is in
            // `flows show`: the list reads only the store's columns.)
            sb.Append("TUNNEL ").Append(flow.TunnelHost).Append(':').Append(flow.TunnelPort).Append(' ').Append((flow.TunnelKind ?? TunnelKind.Upgraded).Name())
                .Append(" -> ").Append(Size(flow.RequestBytes ?? 0)).Append(" up ").Append(Size(flow.ResponseBytes ?? 0)).Append(" down");
            if (flow.DurationMs is { } open)
            {
                sb.Append(' ').Append(open.ToString("0.0", CultureInfo.InvariantCulture)).Append("ms");
            }

            if (flow.ErrorPhase is not null)
            {
                sb.Append(" error (").Append(flow.ErrorPhase).Append("): ").Append(flow.ErrorMessage);
            }
        }

        return sb.ToString();
    }

    /// <summary>One JSON object: id, startedAt, type, method, url, status (null without a response), client, server,
    /// error, durationMs.</summary>
    public static string SummaryJson(FlowListing flow)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id", flow.Id);
            w.WriteString("startedAt", flow.StartedAt);
            w.WriteString("type", flow.IsHttp ? "http" : "tunnel");
            WriteStringOrNull(w, "method", flow.Method);
            WriteStringOrNull(w, "url", flow.Url ?? (flow.IsHttp ? null : flow.TunnelHost + ":" + flow.TunnelPort?.ToString(CultureInfo.InvariantCulture)));
            if (flow.StatusCode is { } status)
            {
                w.WriteNumber("status", status);
            }
            else
            {
                w.WriteNull("status");
            }

            WriteStringOrNull(w, "client", flow.Client);
            WriteStringOrNull(w, "server", flow.Server);
            WriteStringOrNull(w, "error", flow.ErrorPhase is not null ? flow.ErrorPhase + ": " + flow.ErrorMessage : null);
            if (flow.IsHttp && flow.StatusCode is not null && flow.ResponseBytes is { } responseBytes)
            {
                w.WriteNumber("responseBytes", responseBytes);
            }

            if (flow.DurationMs is { } duration)
            {
                w.WriteNumber("durationMs", Math.Round(duration, 3));
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The whole flow: summary, timings, TLS, then each message's head and its body, decoded and pretty-printed.</summary>
    public static string Details(Flow flow)
    {
        var sb = new StringBuilder(4096);
        sb.Append("Flow ").Append(flow.Id).Append("  ").Append(flow.StartedAt.ToString("yyyy-MM-dd HH:mm:ss.fff 'UTC'", CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("Client: ").Append(flow.Client?.ToString() ?? "-").Append("  Server: ").Append(flow.Server?.ToString() ?? "-").Append('\n');
        if (flow.Error is { } error)
        {
            sb.Append("Error: ").Append(error.Phase).Append(": ").Append(error.Message).Append(error.IsTransient ? " (transient)" : string.Empty).Append('\n');
        }

        if (flow is TunnelFlow tunnel)
        {
            sb.Append("Tunnel: ").Append(tunnel.Kind.Name()).Append(" to ").Append(tunnel.Host).Append(':').Append(tunnel.Port)
                .Append(tunnel.Sni is null ? string.Empty : " (SNI " + tunnel.Sni + ")").Append('\n')
                .Append("Bytes: ").Append(tunnel.BytesFromClient).Append(" from the client, ").Append(tunnel.BytesFromServer).Append(" from the server");
            if (tunnel.DurationMs is { } ms)
            {
                sb.Append(", open ").Append(ms.ToString("0.0", CultureInfo.InvariantCulture)).Append(" ms");
            }

            return sb.Append('\n').ToString();
        }

        var http = (HttpFlow)flow;
        sb.Append("HTTP: client ").Append(http.ClientHttpVersion).Append(", origin ").Append(http.ServerHttpVersion ?? "-")
            .Append(http.IsSynthetic ? "  (answered by a hook)" : string.Empty).Append('\n');
        Timings(sb, http.Timings);
        Tls(sb, "Client TLS", http.ClientTls);
        Tls(sb, "Server TLS", http.ServerTls);

        var request = http.Request;
        sb.Append('\n').Append(request.Method).Append(' ').Append(request.Url).Append(' ').Append(request.HttpVersion).Append('\n');
        Head(sb, request.Headers);
        Body(sb, request);
        Trailers(sb, request.Trailers);
        if (http.Response is { } response)
        {
            sb.Append('\n').Append(response.HttpVersion).Append(' ').Append(response.StatusCode).Append(' ').Append(response.Reason).Append('\n');
            Head(sb, response.Headers);
            Body(sb, response);
            Trailers(sb, response.Trailers);
        }
        else
        {
            sb.Append("\n(no response)\n");
        }

        if (http.WebSocket is { } webSocket)
        {
            WebSocket(sb, webSocket);
        }

        return sb.ToString();
    }

    /// <summary>One line a message: time after the 101, direction, kind, size, then the text or a hex dump.</summary>
    private static void WebSocket(StringBuilder sb, FlowWebSocket webSocket)
    {
        sb.Append("\nWebSocket: ").Append(webSocket.Messages.Count).Append(" messages");
        if (webSocket.DroppedMessages > 0)
        {
            sb.Append(" (").Append(webSocket.DroppedMessages).Append(" more not recorded)");
        }

        if (webSocket.CloseCode is { } code)
        {
            sb.Append("; closed by the ").Append(webSocket.ClosedByClient == true ? "client" : "server").Append(' ').Append(code)
                .Append(webSocket.CloseReason is { Length: > 0 } reason ? " " + reason : string.Empty);
        }

        sb.Append('\n');
        if (webSocket.ParseError is { } parseError)
        {
            sb.Append("(messages stopped: ").Append(parseError).Append(")\n");
        }

        foreach (var m in webSocket.Messages)
        {
            sb.Append(m.OffsetMs.ToString("0.0", CultureInfo.InvariantCulture).PadLeft(9)).Append(" ms ")
                .Append(m.FromClient ? "-> " : "<- ").Append(m.Opcode.ToString().ToLowerInvariant()).Append(' ').Append(Size(m.Length))
                .Append(m.IsTruncated ? " (first " + Size(m.Content.Length) + " recorded)" : string.Empty)
                .Append(m.IsCompressed ? " (compressed, not decoded)" : string.Empty).Append('\n');
            if (m.Content.IsEmpty || m.Opcode == WebSocketOpcode.Close)
            {
                continue;
            }

            if (!m.IsCompressed && m.Opcode != WebSocketOpcode.Binary && IsUtf8(m.Content.Span, out var text))
            {
                sb.Append("    ").Append(text.ReplaceLineEndings("\n    ")).Append('\n');
            }
            else
            {
                Hex(sb, m.Content.Span);
            }
        }
    }

    private static void Timings(StringBuilder sb, FlowTimings t)
    {
        sb.Append("Timings (ms after the request head):");
        Step("dns", t.DnsDone);
        Step("connected", t.Connected);
        Step("tls", t.TlsDone);
        Step("sent", t.RequestSent);
        Step("first byte", t.FirstByte);
        Step("done", t.Done);
        sb.Append('\n');

        void Step(string name, double? at) =>
            sb.Append(' ').Append(name).Append(' ').Append(at is { } v ? v.ToString("0.0", CultureInfo.InvariantCulture) : "-");
    }

    /// <summary>A recorded TLS version as people write it: flows keep .NET's names (<c>Tls13</c>), shown as <c>TLS 1.3</c>.</summary>
    internal static string VersionText(string? version) =>
        version is { Length: 5 } v && v.StartsWith("Tls", StringComparison.Ordinal) && char.IsAsciiDigit(v[3]) && char.IsAsciiDigit(v[4])
            ? $"TLS {v[3]}.{v[4]}"
            : version ?? "-";

    private static void Tls(StringBuilder sb, string side, FlowTls? tls)
    {
        if (tls is null)
        {
            return;
        }

        sb.Append(side).Append(": ").Append(VersionText(tls.Version)).Append(' ').Append(tls.CipherSuite ?? "-")
            .Append(" ALPN ").Append(tls.Alpn ?? "-").Append(" SNI ").Append(tls.Sni ?? "-").Append('\n');
        foreach (var der in tls.CertificateChain)
        {
            try
            {
                using var certificate = X509CertificateLoader.LoadCertificate(der);
                sb.Append("  certificate: ").Append(certificate.Subject).Append(" (issuer ").Append(certificate.Issuer)
                    .Append(", until ").Append(certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))
                    .Append(", SHA-256 ").Append(certificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256)).Append(")\n");
            }
            catch (System.Security.Cryptography.CryptographicException)
            {
                sb.Append("  certificate: ").Append(der.Length).Append(" bytes that do not parse\n");
            }
        }
    }

    private static void Head(StringBuilder sb, HttpHeaders headers)
    {
        foreach (var header in headers)
        {
            sb.Append(header.Name).Append(": ").Append(header.Value).Append('\n');
        }
    }

    private static void Trailers(StringBuilder sb, HttpHeaders? trailers)
    {
        if (trailers is { Count: > 0 })
        {
            sb.Append("Trailers:\n");
            Head(sb, trailers);
        }
    }

    private static void Body(StringBuilder sb, FlowMessage message)
    {
        var body = message.Body;
        if (body.Length == 0)
        {
            return;
        }

        sb.Append('\n');
        if (body.Content.IsEmpty)
        {
            sb.Append("(body of ").Append(body.Length).Append(" bytes not recorded; SHA-256 ").Append(body.Sha256 ?? "-").Append(")\n");
            return;
        }

        if (body.IsTruncated)
        {
            sb.Append("(the first ").Append(body.Content.Length).Append(" of ").Append(body.Length).Append(" bytes were recorded)\n");
        }

        var encoding = message.Headers.Get("Content-Encoding");
        var content = body.Content;
        if (!string.IsNullOrWhiteSpace(encoding))
        {
            if (ContentCoding.TryDecode(content, encoding, out var decoded))
            {
                sb.Append("(decoded from ").Append(encoding).Append(": ").Append(decoded.Length).Append(" bytes)\n");
                content = decoded;
            }
            else
            {
                sb.Append("(Content-Encoding ").Append(encoding).Append(" not decoded: ")
                    .Append(ContentCoding.CanDecode(encoding) ? "the recorded bytes do not decode (truncated or corrupt)" : "not supported")
                    .Append("; the bytes as recorded)\n");
                Hex(sb, content.Span);
                return;
            }
        }

        Pretty(sb, content.Span, message.Headers.Get("Content-Type"));
    }

    /// <summary>JSON indented, a form as name: value lines, text as text, anything else as a hex dump.</summary>
    private static void Pretty(StringBuilder sb, ReadOnlySpan<byte> content, string? contentType)
    {
        var type = contentType?.Split(';')[0].Trim().ToLowerInvariant() ?? string.Empty;
        if (type.EndsWith("json", StringComparison.Ordinal) || type.EndsWith("+json", StringComparison.Ordinal))
        {
            try
            {
                using var document = JsonDocument.Parse(content.ToArray());
                var buffer = new ArrayBufferWriter<byte>(content.Length * 2);
                using (var writer = new Utf8JsonWriter(buffer, Indented))
                {
                    document.WriteTo(writer);
                }

                sb.Append(Encoding.UTF8.GetString(buffer.WrittenSpan)).Append('\n');
                return;
            }
            catch (JsonException)
            {
                sb.Append("(not valid JSON; as text)\n");
            }
        }

        if (type == "application/x-www-form-urlencoded" && IsUtf8(content, out var form))
        {
            foreach (var pair in form.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var equals = pair.IndexOf('=', StringComparison.Ordinal);
                var name = equals < 0 ? pair : pair[..equals];
                var value = equals < 0 ? string.Empty : pair[(equals + 1)..];
                sb.Append(Uri.UnescapeDataString(name.Replace('+', ' '))).Append(": ").Append(Uri.UnescapeDataString(value.Replace('+', ' '))).Append('\n');
            }

            return;
        }

        if (IsUtf8(content, out var text) && !text.AsSpan().ContainsAnyInRange('\0', '\b'))
        {
            sb.Append(text);
            if (!text.EndsWith('\n'))
            {
                sb.Append('\n');
            }

            return;
        }

        Hex(sb, content);
    }

    private static bool IsUtf8(ReadOnlySpan<byte> content, out string text)
    {
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(content);
            return true;
        }
        catch (DecoderFallbackException)
        {
            text = string.Empty;
            return false;
        }
    }

    /// <summary><c>00000000  48 65 6c 6c 6f ...  |Hello...|</c>, as <c>hexdump -C</c>.</summary>
    private static void Hex(StringBuilder sb, ReadOnlySpan<byte> content)
    {
        var shown = content[..Math.Min(content.Length, MaxHexBytes)];
        for (var offset = 0; offset < shown.Length; offset += HexBytesPerLine)
        {
            var line = shown.Slice(offset, Math.Min(HexBytesPerLine, shown.Length - offset));
            sb.Append(offset.ToString("x8", CultureInfo.InvariantCulture)).Append("  ");
            for (var i = 0; i < HexBytesPerLine; i++)
            {
                sb.Append(i < line.Length ? line[i].ToString("x2", CultureInfo.InvariantCulture) + " " : "   ");
                if (i == 7)
                {
                    sb.Append(' ');
                }
            }

            sb.Append(" |");
            foreach (var b in line)
            {
                sb.Append(b is >= 0x20 and < 0x7f ? (char)b : '.');
            }

            sb.Append("|\n");
        }

        if (content.Length > shown.Length)
        {
            sb.Append("... ").Append(content.Length - shown.Length).Append(" more bytes\n");
        }
    }

    private static string Size(long bytes) => bytes switch
    {
        < 1024 => bytes.ToString(CultureInfo.InvariantCulture) + "b",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + "k",
        _ => (bytes / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture) + "m",
    };

    private static void WriteStringOrNull(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, value);
        }
    }
}
