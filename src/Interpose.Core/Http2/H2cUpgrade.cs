using System.Buffers.Binary;
using System.Buffers.Text;
using System.Globalization;
using Interpose.Core.Http;

namespace Interpose.Core.Http2;

/// <summary>
/// The HTTP/1.1 upgrade to HTTP/2 over cleartext, <c>Upgrade: h2c</c> (RFC 7540 §3.2; RFC 9113 §3.1 deprecates it but
/// curl <c>--http2</c> and nghttp <c>-u</c> still send it on <c>http://</c>): which requests ask for it, whether their
/// <c>HTTP2-Settings</c> is valid, and the HTTP/2 request that stream 1 then carries. No I/O.
/// </summary>
public static class H2cUpgrade
{
    /// <summary>
    /// The largest request body (as sent, chunked framing included) read before switching: 64 KiB. RFC 7540 §3.2 makes
    /// the client send the whole body before the switch, so the proxy must buffer it to hand it to stream 1; 64 KiB is
    /// one HTTP/2 stream's default receive window (65,535, RFC 9113 §6.9.2), what the same body could have sent over
    /// HTTP/2 before its first WINDOW_UPDATE. A larger body is answered in HTTP/1.1 instead (RFC 9110 §7.8: a server
    /// MAY ignore Upgrade).
    /// </summary>
    public const int MaxBodyBytes = 64 * 1024;

    /// <summary>The answer that accepts the upgrade (RFC 7540 §3.2: 101 with <c>Upgrade: h2c</c>; RFC 9110 §7.8: a 101
    /// names the protocol in Upgrade and sends the "upgrade" connection option).</summary>
    public static ReadOnlySpan<byte> SwitchingProtocols => "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"u8;

    /// <summary>Whether the request asks to upgrade to h2c: an HTTP/1.1 request whose Connection lists "upgrade" and
    /// whose Upgrade lists <c>h2c</c> (RFC 7540 §3.2, RFC 9110 §7.8).</summary>
    /// <param name="head">The request.</param>
    /// <returns><see langword="true"/> when the client asks for h2c (valid or not).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="head"/> is null.</exception>
    public static bool IsRequested(HttpRequestHead head)
    {
        ArgumentNullException.ThrowIfNull(head);
        if (head.Version != System.Net.HttpVersion.Version11 || !HopByHop.HasConnectionOption(head.Headers, "upgrade"))
        {
            return false;
        }

        foreach (string value in head.Headers.GetValues("Upgrade"))
        {
            foreach (ReadOnlySpan<char> protocol in HttpChars.EnumerateList(value))
            {
                if (protocol.Equals("h2c", StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// Decodes the request's <c>HTTP2-Settings</c> (RFC 7540 §3.2.1): exactly one field, named as a connection option,
    /// whose value is the base64url payload of a SETTINGS frame (trailing '=' omitted; tolerated here), a multiple of 6
    /// octets, each value valid (RFC 9113 §6.5.2). RFC 7540 §3.2: "A server MUST NOT upgrade the connection to HTTP/2 if
    /// this header field is not present or if more than one is present"; one that does not decode is not valid either.
    /// </summary>
    /// <param name="headers">The request's fields.</param>
    /// <param name="settings">The settings in order when valid; empty otherwise.</param>
    /// <param name="problem">Why the field is not valid, for the log; null when it is.</param>
    /// <returns><see langword="true"/> when the upgrade may go ahead.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="headers"/> is null.</exception>
    public static bool TryReadSettings(HttpHeaders headers, out Http2Setting[] settings, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(headers);
        settings = [];
        string? value = null;
        foreach (string v in headers.GetValues("HTTP2-Settings"))
        {
            if (value is not null)
            {
                problem = "more than one HTTP2-Settings field";
                return false;
            }

            value = v;
        }

        if (value is null)
        {
            problem = "no HTTP2-Settings field";
            return false;
        }

        // RFC 7540 §3.2.1: "a client sending the HTTP2-Settings header field MUST also send HTTP2-Settings as a
        // connection option in the Connection header field to prevent it from being forwarded".
        if (!HopByHop.HasConnectionOption(headers, "HTTP2-Settings"))
        {
            problem = "HTTP2-Settings is not named in Connection";
            return false;
        }

        // RFC 4648 §5: one character left over (length ≡ 1 mod 4) is not a whole octet; Base64Url would throw on it.
        var token = value.AsSpan().Trim(" \t").TrimEnd('=');
        if (token.ContainsAnyExcept(Base64UrlAlphabet) || token.Length % 4 == 1)
        {
            problem = "HTTP2-Settings is not base64url";
            return false;
        }

        var payload = new byte[Base64Url.GetMaxDecodedLength(token.Length)];
        if (!Base64Url.TryDecodeFromChars(token, payload, out int length))
        {
            problem = "HTTP2-Settings is not base64url";
            return false;
        }

        // RFC 9113 §6.5: a SETTINGS payload is a sequence of 6-octet entries.
        if (length % 6 != 0)
        {
            problem = string.Create(CultureInfo.InvariantCulture, $"HTTP2-Settings decodes to {length} octets, not a multiple of 6");
            return false;
        }

        var decoded = new Http2Setting[length / 6];
        for (int i = 0; i < decoded.Length; i++)
        {
            var entry = payload.AsSpan(i * 6, 6);
            decoded[i] = new Http2Setting((SettingsParameter)BinaryPrimitives.ReadUInt16BigEndian(entry), BinaryPrimitives.ReadUInt32BigEndian(entry[2..]));
            try
            {
                // RFC 7540 §3.2.1: "A server decodes and interprets these values as it would any other SETTINGS frame."
                Http2Settings.Validate(decoded[i].Parameter, decoded[i].Value);
            }
            catch (Http2ConnectionException ex)
            {
                problem = ex.Message;
                return false;
            }
        }

        settings = decoded;
        problem = null;
        return true;
    }

    /// <summary>
    /// The HTTP/2 request of stream 1 (RFC 7540 §3.2: "The HTTP/1.1 request that is sent prior to upgrade is assigned a
    /// stream identifier of 1"): the fields translated as for any HTTP/1.1 request (Upgrade, HTTP2-Settings, Connection
    /// and what it names removed, RFC 9113 §8.2.2), and a chunked body, which arrived whole, given its length.
    /// </summary>
    /// <param name="head">The upgrade request, in origin-form or asterisk-form.</param>
    /// <param name="chunked">Whether its body came chunked (Transfer-Encoding is removed, a Content-Length replaces it).</param>
    /// <param name="bodyLength">The decoded body's length.</param>
    /// <returns>The validated request.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="head"/> is null.</exception>
    /// <exception cref="ArgumentException">The request has no Host.</exception>
    /// <exception cref="Http2StreamException">The translated request is not a valid HTTP/2 request (RFC 9113 §8.1.1).</exception>
    public static Http2RequestFields ToStreamOne(HttpRequestHead head, bool chunked, long bodyLength)
    {
        ArgumentNullException.ThrowIfNull(head);
        var fields = Http2HeaderRules.FromHttp1Request(head, "http");
        if (chunked && bodyLength > 0)
        {
            fields.Add(new HttpHeader("content-length", bodyLength.ToString(CultureInfo.InvariantCulture)));
        }

        return Http2HeaderRules.ValidateRequest(fields, 1);
    }

    // RFC 4648 §5: the base64url alphabet (RFC 7540 §3.2.1 uses its token68 form without padding).
    private static readonly System.Buffers.SearchValues<char> Base64UrlAlphabet =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
}
