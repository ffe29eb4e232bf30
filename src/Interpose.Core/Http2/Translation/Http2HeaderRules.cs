using Interpose.Core.Http;

namespace Interpose.Core.Http2;

/// <summary>The HTTP/2 field rules (RFC 9113 §8.2, §8.3) and the HTTP/1.1 ↔ HTTP/2 translation (reference §4), as
/// pure functions. Validate first, translate second: an HTTP/2 message that breaks §8.2.1 or §8.2.2 is malformed
/// (§8.1.1), and "an intermediary MUST NOT forward a malformed request or response" — the defence against h2→h1
/// request smuggling. Malformed messages are rejected, never sanitized.</summary>
/// <remarks>Field lists are <see cref="HttpHeader"/> lists with pseudo-fields (names starting with ':') first, as
/// the HPACK decoder produced them or as the HPACK encoder will consume them.</remarks>
public static class Http2HeaderRules
{
    // RFC 9113 §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific header fields.
    // This includes the Connection header field and those listed as having connection-specific semantics in Section
    // 7.6.1 of [HTTP] (that is, Proxy-Connection, Keep-Alive, Transfer-Encoding, and Upgrade)."
    private static readonly string[] ConnectionSpecificFields = ["connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade"];

    /// <summary>Whether <paramref name="name"/> is a valid regular HTTP/2 field name: a non-empty RFC 9110 §5.1 token
    /// with no uppercase letters (RFC 9113 §8.2.1: no 0x00-0x20, 0x41-0x5a, 0x7f-0xff, no ':').</summary>
    /// <param name="name">The name.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidFieldName(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty)
        {
            return false;
        }

        foreach (char c in name)
        {
            // ':' is not a token character, so it is excluded here too.
            if (c is >= 'A' and <= 'Z' || !HttpChars.IsTokenChar(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether <paramref name="value"/> is a valid HTTP/2 field value (RFC 9113 §8.2.1): no NUL, CR or LF, no
    /// leading or trailing SP or HTAB, nothing above U+00FF.</summary>
    /// <param name="value">The value.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidFieldValue(ReadOnlySpan<char> value)
    {
        if (!value.IsEmpty && (value[0] is ' ' or '\t' || value[^1] is ' ' or '\t'))
        {
            return false;
        }

        foreach (char c in value)
        {
            if (c is '\0' or '\r' or '\n' or > '\u00FF')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether <paramref name="name"/> is a connection-specific field that HTTP/2 forbids (RFC 9113 §8.2.2):
    /// Connection, Proxy-Connection, Keep-Alive, Transfer-Encoding, Upgrade (case-insensitive). TE is handled apart.</summary>
    /// <param name="name">The field name.</param>
    /// <returns><see langword="true"/> when forbidden in HTTP/2.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    public static bool IsConnectionSpecific(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (string f in ConnectionSpecificFields)
        {
            if (string.Equals(f, name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Validates a request field section (RFC 9113 §8.2, §8.3.1, §8.5; RFC 8441 §4).</summary>
    /// <param name="fields">The decoded fields in order.</param>
    /// <param name="streamId">The stream, for the error.</param>
    /// <returns>The pseudo-fields and regular fields.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="fields"/> is null.</exception>
    /// <exception cref="Http2StreamException">PROTOCOL_ERROR: the request is malformed (§8.1.1).</exception>
    public static Http2RequestFields ValidateRequest(IReadOnlyList<HttpHeader> fields, int streamId)
    {
        ArgumentNullException.ThrowIfNull(fields);
        string? method = null, scheme = null, authority = null, path = null, protocol = null, host = null;
        // Sized for the regular fields only (the pseudo-fields come first, §8.3).
        List<HttpHeader>? regular = null;
        var pseudo = 0;
        foreach (HttpHeader field in fields)
        {
            if (field.Name.StartsWith(':'))
            {
                // RFC 9113 §8.3: "All pseudo-header fields MUST appear in a field block before all regular field lines."
                if (regular is not null)
                {
                    throw Malformed(streamId, $"Pseudo-field {field.Name} after a regular field (RFC 9113 §8.3).");
                }

                RequireValidValue(field, streamId);
                switch (field.Name)
                {
                    case ":method": method = Once(method, field, streamId); break;
                    case ":scheme": scheme = Once(scheme, field, streamId); break;
                    case ":authority": authority = Once(authority, field, streamId); break;
                    case ":path": path = Once(path, field, streamId); break;
                    case ":protocol": protocol = Once(protocol, field, streamId); break;

                    // RFC 9113 §8.3: "Endpoints MUST treat a request or response that contains undefined or invalid
                    // pseudo-header fields as malformed" — :status included (a response pseudo-field).
                    default: throw Malformed(streamId, $"Unknown or response pseudo-field {field.Name} in a request (RFC 9113 §8.3).");
                }

                pseudo++;
                continue;
            }

            RequireValidRegularField(field, streamId);
            if (field.Name == "host")
            {
                host = Once(host, field, streamId);
            }

            (regular ??= new List<HttpHeader>(fields.Count - pseudo)).Add(field);
        }

        if (method is null)
        {
            throw Malformed(streamId, "Request without :method (RFC 9113 §8.3.1).");
        }

        // RFC 9113 §8.3.1: ":method" holds the HTTP method, and RFC 9110 §9.1: method = token. Anything else cannot be
        // the method of the HTTP/1.1 request line the origin is sent (Http1Parser.WriteRequestHead refuses it).
        if (!HttpChars.IsToken(method))
        {
            throw Malformed(streamId, $":method '{method}' is not a token (RFC 9113 §8.3.1, RFC 9110 §9.1).");
        }

        // RFC 9113 §8.3.1: ":path" is the absolute-path and query of the target URI (RFC 3986 characters) or "*": no
        // space, control or non-ASCII octet, the rule of the HTTP/1.1 request-target (Http1Parser.IsValidTargetText).
        if (path is not null && !Http1Parser.IsValidTargetText(path))
        {
            throw Malformed(streamId, $":path '{path}' holds a space, control or non-ASCII character (RFC 9113 §8.3.1).");
        }

        if (protocol is not null)
        {
            // RFC 8441 §4: ":protocol" only with CONNECT, which then carries :scheme and :path like other requests.
            if (method != "CONNECT" || scheme is null || path is null || authority is null)
            {
                throw Malformed(streamId, "Extended CONNECT needs :method CONNECT, :scheme, :path and :authority (RFC 8441 §4).");
            }
        }
        else if (method == "CONNECT")
        {
            // RFC 9113 §8.5: "The :scheme and :path pseudo-header fields MUST be omitted"; ":authority ... contains the
            // host and port to connect to".
            if (scheme is not null || path is not null || authority is null)
            {
                throw Malformed(streamId, "CONNECT must carry :authority and no :scheme or :path (RFC 9113 §8.5).");
            }
        }
        else
        {
            // RFC 9113 §8.3.1: "All HTTP/2 requests MUST include exactly one valid value for the :method, :scheme, and
            // :path pseudo-header fields, unless they are CONNECT requests".
            if (scheme is null || path is null)
            {
                throw Malformed(streamId, "Request without :scheme or :path (RFC 9113 §8.3.1).");
            }

            // RFC 9113 §8.3.1: ":path ... MUST NOT be empty for http or https URIs"; it is origin-form, or "*" for
            // OPTIONS (asterisk-form).
            bool http = scheme is "http" or "https";
            if (http && !(path.StartsWith('/') || (path == "*" && method == "OPTIONS")))
            {
                throw Malformed(streamId, $":path '{path}' is not origin-form (RFC 9113 §8.3.1).");
            }

            // RFC 9110 §7.2 for the HTTP/1.1 side: http(s) requests name their authority; RFC 9113 §8.3.1 puts it in
            // :authority or Host.
            if (http && authority is null && host is null)
            {
                throw Malformed(streamId, "Request without :authority or Host (RFC 9113 §8.3.1).");
            }
        }

        // RFC 9113 §8.3.1: "A server SHOULD treat a request as malformed if it contains a Host header field that
        // identifies an entity that differs from the entity in the :authority pseudo-header field."
        if (authority is not null && host is not null && !string.Equals(authority, host, StringComparison.OrdinalIgnoreCase))
        {
            throw Malformed(streamId, $"Host '{host}' differs from :authority '{authority}' (RFC 9113 §8.3.1).");
        }

        return new Http2RequestFields(method, scheme, authority ?? host, path, protocol, (IReadOnlyList<HttpHeader>?)regular ?? []);
    }

    /// <summary>Translates a validated HTTP/2 request into an HTTP/1.1 request head: the request line from the
    /// pseudo-fields, <c>Host</c> = <c>:authority</c> first (replacing any Host, RFC 9113 §8.3.1), the cookie crumbs
    /// joined with "; " (§8.2.3), every other field in order with its lowercase name.</summary>
    /// <param name="request">The result of <see cref="ValidateRequest"/>.</param>
    /// <returns>An HTTP/1.1 head. The body framing fields (Content-Length or Transfer-Encoding) are the caller's.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="request"/> is null.</exception>
    /// <exception cref="NotSupportedException">An extended CONNECT (RFC 8441); it maps to an HTTP/1.1 Upgrade, not
    /// done here.</exception>
    public static HttpRequestHead ToHttp1Request(Http2RequestFields request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Protocol is not null)
        {
            throw new NotSupportedException("Extended CONNECT (RFC 8441) is not translated to HTTP/1.1.");
        }

        var head = new HttpRequestHead
        {
            Method = request.Method,

            // RFC 9112 §3.2.3: CONNECT uses authority-form.
            Target = request.Method == "CONNECT" ? request.Authority! : request.Path!,
            Version = System.Net.HttpVersion.Version11,
        };
        if (request.Authority is not null)
        {
            head.Headers.Add("host", request.Authority);
        }

        AppendJoiningCookies(request.Fields, head.Headers, skipHost: true);
        return head;
    }

    /// <summary>Validates an HTTP/2 response field section (RFC 9113 §8.3.2) and translates it into an HTTP/1.1 head.
    /// The reason phrase is left empty (RFC 9112 §4 allows it; the proxy fills in the standard one).</summary>
    /// <param name="fields">The decoded fields in order.</param>
    /// <param name="streamId">The stream, for the error.</param>
    /// <returns>The HTTP/1.1 response head.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="fields"/> is null.</exception>
    /// <exception cref="Http2StreamException">PROTOCOL_ERROR: the response is malformed.</exception>
    public static HttpResponseHead ToHttp1Response(IReadOnlyList<HttpHeader> fields, int streamId)
    {
        ArgumentNullException.ThrowIfNull(fields);
        string? status = null;
        var regular = new List<HttpHeader>(fields.Count);
        foreach (HttpHeader field in fields)
        {
            if (field.Name.StartsWith(':'))
            {
                if (regular.Count > 0)
                {
                    throw Malformed(streamId, $"Pseudo-field {field.Name} after a regular field (RFC 9113 §8.3).");
                }

                // RFC 9113 §8.3.2: ":status" is the only response pseudo-field.
                if (field.Name != ":status")
                {
                    throw Malformed(streamId, $"Pseudo-field {field.Name} in a response (RFC 9113 §8.3.2).");
                }

                status = Once(status, field, streamId);
                continue;
            }

            RequireValidRegularField(field, streamId);
            regular.Add(field);
        }

        // RFC 9113 §8.3.2: ":status" MUST be included; RFC 9110 §15: a three-digit code 100..599.
        if (status is null || status.Length != 3 || !int.TryParse(status, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int code) || code < 100)
        {
            throw Malformed(streamId, $"Missing or invalid :status '{status}' (RFC 9113 §8.3.2).");
        }

        // RFC 9113 §8.6: 101 Switching Protocols cannot be expressed in HTTP/2.
        if (code == 101)
        {
            throw Malformed(streamId, "101 in HTTP/2 (RFC 9113 §8.6).");
        }

        var head = new HttpResponseHead { StatusCode = code, ReasonPhrase = "", Version = System.Net.HttpVersion.Version11 };
        AppendJoiningCookies(regular, head.Headers, skipHost: false);
        return head;
    }

    /// <summary>Validates an HTTP/2 trailer section (RFC 9113 §8.1: "Trailers MUST NOT include pseudo-header fields")
    /// and returns it as HTTP/1.1 trailer fields.</summary>
    /// <param name="fields">The decoded fields.</param>
    /// <param name="streamId">The stream, for the error.</param>
    /// <returns>The trailer fields.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="fields"/> is null.</exception>
    /// <exception cref="Http2StreamException">PROTOCOL_ERROR: a pseudo-field or an invalid field.</exception>
    public static HttpHeaders ToHttp1Trailers(IReadOnlyList<HttpHeader> fields, int streamId)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var trailers = new HttpHeaders(fields.Count);
        foreach (HttpHeader field in fields)
        {
            if (field.Name.StartsWith(':'))
            {
                throw Malformed(streamId, $"Pseudo-field {field.Name} in trailers (RFC 9113 §8.1).");
            }

            RequireValidRegularField(field, streamId);
            trailers.AddParsed(field.Name, field.Value);
        }

        return trailers;
    }

    /// <summary>The size of a field list as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2): "the uncompressed
    /// size of the field name in octets plus the uncompressed size of the field value in octets plus an overhead of 32
    /// octets for each field" (RFC 7541 §4.1). Names and values are octets, one per char.</summary>
    /// <param name="fields">The fields, pseudo-fields included.</param>
    /// <returns>The size in octets.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="fields"/> is null.</exception>
    public static long FieldListSize(IReadOnlyList<HttpHeader> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        long size = 0;
        for (var i = 0; i < fields.Count; i++)
        {
            size += fields[i].Name.Length + fields[i].Value.Length + Hpack.HeaderField.EntryOverhead;
        }

        return size;
    }

    /// <summary>Translates an HTTP/1.1 request head into an HTTP/2 field list (RFC 9113 §8.3.1, §8.2.2, §8.2.3).</summary>
    /// <param name="head">The HTTP/1.1 request (origin-form, absolute-form, asterisk-form or CONNECT target).</param>
    /// <param name="scheme">The :scheme: "https" when intercepted, "http" in plain tunnels and for absolute-form http.</param>
    /// <param name="authority">The :authority; <see langword="null"/> to take it from the absolute-form target, the
    /// CONNECT target, or Host, in that order.</param>
    /// <returns>Pseudo-fields first, then the regular fields in order with lowercase names; connection-specific fields,
    /// the fields Connection names, and Host removed; TE reduced to "trailers" when it offers it; cookies split into crumbs.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="head"/> or <paramref name="scheme"/> is null.</exception>
    /// <exception cref="ArgumentException">No authority can be found for a request that needs one.</exception>
    public static List<HttpHeader> FromHttp1Request(HttpRequestHead head, string scheme, string? authority = null)
    {
        ArgumentNullException.ThrowIfNull(head);
        ArgumentNullException.ThrowIfNull(scheme);
        var fields = new List<HttpHeader>(head.Headers.Count + 4) { new(":method", head.Method) };
        string target = head.Target;
        if (head.Method == "CONNECT")
        {
            // RFC 9113 §8.5: only :method and :authority.
            fields.Add(new(":authority", authority ?? target));
        }
        else
        {
            string path = target;
            int schemeEnd = target.IndexOf("://", StringComparison.Ordinal);
            if (!target.StartsWith('/') && target != "*" && schemeEnd > 0)
            {
                // Absolute-form (RFC 9112 §3.2.2): split authority and path; "/" when the path is empty (RFC 9113 §8.3.1).
                int authorityStart = schemeEnd + 3;
                int pathStart = target.AsSpan(authorityStart).IndexOfAny('/', '?');
                string targetAuthority = pathStart < 0 ? target[authorityStart..] : target.Substring(authorityStart, pathStart);
                authority ??= targetAuthority;
                path = pathStart < 0 ? "/" : target[(authorityStart + pathStart)..];
                if (path.StartsWith('?'))
                {
                    path = "/" + path;
                }
            }

            authority ??= head.Headers.Get("Host");
            fields.Add(new(":scheme", scheme));
            if (authority is not null)
            {
                fields.Add(new(":authority", authority));
            }
            else if (scheme is "http" or "https")
            {
                throw new ArgumentException("The request has no authority: no absolute-form target, no Host and none given.", nameof(authority));
            }

            fields.Add(new(":path", path));
        }

        AppendRegularForHttp2(head.Headers, fields, isRequest: true);
        return fields;
    }

    /// <summary>Translates an HTTP/1.1 response head into an HTTP/2 field list: <c>:status</c> (the reason phrase is
    /// dropped, RFC 9113 §8.3.2), then the regular fields as for <see cref="FromHttp1Request"/>.</summary>
    /// <param name="head">The HTTP/1.1 response.</param>
    /// <returns>The field list.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="head"/> is null.</exception>
    /// <exception cref="ArgumentException">A 101 response (RFC 9113 §8.6: not expressible in HTTP/2).</exception>
    public static List<HttpHeader> FromHttp1Response(HttpResponseHead head)
    {
        ArgumentNullException.ThrowIfNull(head);
        if (head.StatusCode == 101)
        {
            throw new ArgumentException("101 Switching Protocols cannot be sent over HTTP/2 (RFC 9113 §8.6).", nameof(head));
        }

        var fields = new List<HttpHeader>(head.Headers.Count + 1)
        {
            new(":status", head.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        };
        AppendRegularForHttp2(head.Headers, fields, isRequest: false);
        return fields;
    }

    /// <summary>Translates HTTP/1.1 trailer fields into an HTTP/2 trailer list (no pseudo-fields, RFC 9113 §8.1).</summary>
    /// <param name="trailers">The chunked trailer section.</param>
    /// <returns>The field list.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="trailers"/> is null.</exception>
    public static List<HttpHeader> FromHttp1Trailers(HttpHeaders trailers)
    {
        ArgumentNullException.ThrowIfNull(trailers);
        var fields = new List<HttpHeader>(trailers.Count);
        AppendRegularForHttp2(trailers, fields, isRequest: false);
        return fields;
    }

    /// <summary>Appends the fields of an HTTP/1.1 response head or trailer section to <paramref name="fields"/> as
    /// <see cref="FromHttp1Trailers"/> translates them, so a caller can reuse one list per stream.</summary>
    /// <param name="headers">The HTTP/1.1 fields.</param>
    /// <param name="fields">The list to append to (its current content is kept: e.g. <c>:status</c>).</param>
    /// <exception cref="ArgumentNullException"><paramref name="headers"/> or <paramref name="fields"/> is null.</exception>
    public static void AppendFromHttp1Response(HttpHeaders headers, List<HttpHeader> fields)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(fields);
        AppendRegularForHttp2(headers, fields, isRequest: false);
    }

    private static void AppendRegularForHttp2(HttpHeaders headers, List<HttpHeader> fields, bool isRequest)
    {
        // RFC 9113 §8.2.2: connection-specific fields and (RFC 9110 §7.6.1) the fields Connection names are removed.
        List<string>? named = null;
        foreach (HttpHeader h in headers)
        {
            if (string.Equals(h.Name, "connection", StringComparison.OrdinalIgnoreCase))
            {
                foreach (ReadOnlySpan<char> option in HttpChars.EnumerateList(h.Value))
                {
                    (named ??= []).Add(option.ToString());
                }
            }
        }

        foreach (HttpHeader h in headers)
        {
            string name = Lowercase(h.Name);
            if (IsConnectionSpecific(name) || (isRequest && name == "host") || (named is not null && named.Contains(name, StringComparer.OrdinalIgnoreCase) && name is not "content-length"))
            {
                continue;
            }

            if (name == "te")
            {
                // RFC 9113 §8.2.2: TE "MUST NOT contain any value other than trailers".
                if (isRequest && OffersTrailers(h.Value))
                {
                    fields.Add(new("te", "trailers"));
                }

                continue;
            }

            if (name == "cookie" && isRequest)
            {
                // RFC 9113 §8.2.3: "the Cookie header field MAY be split into separate header fields, each with one or
                // more cookie-pairs" — smaller HPACK entries that compress better.
                foreach (ReadOnlySpan<char> crumb in new CookieCrumbs(h.Value))
                {
                    fields.Add(new("cookie", crumb.ToString()));
                }

                continue;
            }

            fields.Add(new(name, h.Value));
        }
    }

    /// <summary>RFC 9113 §8.2.1: field names are lowercase in HTTP/2. A name already lowercase is kept; a known one
    /// (the HPACK static table's) maps to the table's string; only another name costs a new string.</summary>
    private static string Lowercase(string name)
    {
        if (!name.AsSpan().ContainsAnyInRange('A', 'Z'))
        {
            return name;
        }

        return Hpack.StaticTable.FindNameIgnoreCase(name) ?? name.ToLowerInvariant();
    }

    private static bool OffersTrailers(string te)
    {
        foreach (ReadOnlySpan<char> member in HttpChars.EnumerateList(te))
        {
            int semicolon = member.IndexOf(';');
            ReadOnlySpan<char> token = (semicolon < 0 ? member : member[..semicolon]).Trim(" \t");
            if (token.Equals("trailers", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static void AppendJoiningCookies(IReadOnlyList<HttpHeader> fields, HttpHeaders headers, bool skipHost)
    {
        // RFC 9113 §8.2.3: "If there are multiple Cookie header fields after decompression, these MUST be concatenated
        // into a single octet string using the two-octet delimiter of 0x3b, 0x20 (the ASCII string "; ") before being
        // passed into a non-HTTP/2 context".
        int cookieIndex = -1;
        string? cookie = null;
        foreach (HttpHeader field in fields)
        {
            if (skipHost && field.Name == "host")
            {
                continue;
            }

            if (field.Name == "cookie")
            {
                if (cookie is null)
                {
                    cookieIndex = headers.Count;
                    cookie = field.Value;
                    headers.AddParsed("cookie", "");
                }
                else
                {
                    cookie = cookie + "; " + field.Value;
                }

                continue;
            }

            headers.AddParsed(field.Name, field.Value);
        }

        if (cookie is not null)
        {
            headers.RemoveAt(cookieIndex);
            headers.Insert(cookieIndex, "cookie", cookie);
        }
    }

    private static void RequireValidRegularField(HttpHeader field, int streamId)
    {
        // RFC 9113 §8.2.1: "A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a, or 0x7f-0xff"
        // (uppercase included) and no ':' outside pseudo-fields; RFC 9110 §5.1: a token.
        if (!IsValidFieldName(field.Name))
        {
            throw Malformed(streamId, $"Invalid field name '{field.Name}' (RFC 9113 §8.2.1).");
        }

        RequireValidValue(field, streamId);

        // RFC 9113 §8.2.2: connection-specific fields make the message malformed.
        if (IsConnectionSpecific(field.Name))
        {
            throw Malformed(streamId, $"Connection-specific field '{field.Name}' (RFC 9113 §8.2.2).");
        }

        // RFC 9113 §8.2.2: "The only exception to this is the TE header field, which MAY be present in an HTTP/2
        // request; when it is, it MUST NOT contain any value other than "trailers"."
        if (field.Name == "te" && !string.Equals(field.Value, "trailers", StringComparison.OrdinalIgnoreCase))
        {
            throw Malformed(streamId, $"TE '{field.Value}'; only 'trailers' is allowed (RFC 9113 §8.2.2).");
        }
    }

    private static void RequireValidValue(HttpHeader field, int streamId)
    {
        // RFC 9113 §8.2.1: no NUL, LF or CR; no leading or trailing SP or HTAB.
        if (!IsValidFieldValue(field.Value))
        {
            throw Malformed(streamId, $"Invalid value of field '{field.Name}' (RFC 9113 §8.2.1).");
        }
    }

    private static string Once(string? existing, HttpHeader field, int streamId) => existing is null
        ? field.Value
        : throw Malformed(streamId, $"Duplicate {field.Name} (RFC 9113 §8.3).");

    private static Http2StreamException Malformed(int streamId, string message) =>
        new(streamId, Http2ErrorCode.ProtocolError, "Malformed HTTP/2 message: " + message);

    // Splits a Cookie value on ';' into trimmed, non-empty crumbs.
    private ref struct CookieCrumbs
    {
        private ReadOnlySpan<char> _rest;

        public CookieCrumbs(string value)
        {
            _rest = value;
            Current = default;
        }

        public ReadOnlySpan<char> Current { get; private set; }

        public readonly CookieCrumbs GetEnumerator() => this;

        public bool MoveNext()
        {
            while (!_rest.IsEmpty)
            {
                int semicolon = _rest.IndexOf(';');
                ReadOnlySpan<char> crumb = (semicolon < 0 ? _rest : _rest[..semicolon]).Trim(" \t");
                _rest = semicolon < 0 ? default : _rest[(semicolon + 1)..];
                if (!crumb.IsEmpty)
                {
                    Current = crumb;
                    return true;
                }
            }

            return false;
        }
    }
}
