namespace Interpose.Core.Http;

/// <summary>
/// Hop-by-hop field rules (RFC 9110 §7.6.1): fields that describe one connection and must not be forwarded.
/// </summary>
/// <remarks>
/// Removed: Connection and every field it names, Proxy-Connection (non-standard, sent by old clients to proxies),
/// Keep-Alive, TE, Transfer-Encoding (the forwarding side re-frames the body), Upgrade (unless an upgrade is being
/// relayed), Proxy-Authorization (credentials for this proxy, RFC 9110 §11.7.2), and HTTP2-Settings (RFC 7540 §3.2.1:
/// settings for the next hop's HTTP/2 connection, removed even when Connection fails to name it, as YARP does). Trailer is kept: it is end-to-end
/// and announces trailer fields that Interpose forwards when it re-chunks. Host and Content-Length are never removed
/// because a Connection option names them.
/// </remarks>
public static class HopByHop
{
    /// <summary>Removes the hop-by-hop fields from <paramref name="headers"/>.</summary>
    /// <param name="headers">The fields to clean, in place.</param>
    /// <param name="keepUpgrade">When <see langword="true"/> and Upgrade is present, keep Upgrade and send <c>Connection: upgrade</c>
    /// (for relaying a real upgrade request or 101 response).</param>
    /// <param name="keepTransferEncoding">When <see langword="true"/>, keep Transfer-Encoding where it stands: the body is
    /// relayed with its chunked framing untouched, so the field still describes it.</param>
    /// <exception cref="ArgumentNullException"><paramref name="headers"/> is null.</exception>
    public static void Remove(HttpHeaders headers, bool keepUpgrade = false, bool keepTransferEncoding = false)
    {
        ArgumentNullException.ThrowIfNull(headers);

        // RFC 9110 §7.6.1: "Intermediaries MUST parse a received Connection header field before a message is
        // forwarded and, for each connection-option in this field, remove any header or trailer field(s) from the
        // message with the same name as the connection-option, and then remove the Connection header field itself".
        // Options naming a field the rules below remove anyway (keep-alive, upgrade, te...) need no list: the usual
        // Connection values cost no allocation, and every message is cleaned in one pass over its fields.
        var rules = new Rules(keepUpgrade, keepTransferEncoding, Named: null);
        List<string>? named = null;
        foreach (HttpHeader h in headers)
        {
            if (string.Equals(h.Name, "Connection", StringComparison.OrdinalIgnoreCase))
            {
                foreach (ReadOnlySpan<char> option in HttpChars.EnumerateList(h.Value))
                {
                    if (!rules.RemovesAnyway(option) && !IsProtected(option) && !(keepUpgrade && option.Equals("upgrade", StringComparison.OrdinalIgnoreCase)))
                    {
                        (named ??= []).Add(option.ToString());
                    }
                }
            }
        }

        headers.RemoveWhere(static (h, rules) => rules.Removes(h.Name), rules with { Named = named });

        if (keepUpgrade && headers.Contains("Upgrade"))
        {
            // RFC 9110 §7.8: a sender of Upgrade MUST also send the "upgrade" connection option.
            headers.Add("Connection", "upgrade");
        }
    }

    // NOTE: "Connection: Host" or "Connection: Content-Length" would strip the fields that route and frame the message
    // (hop-by-hop header abuse); those two are never removed through Connection.
    private static bool IsProtected(ReadOnlySpan<char> option) =>
        option.Equals("Host", StringComparison.OrdinalIgnoreCase) || option.Equals("Content-Length", StringComparison.OrdinalIgnoreCase);

    /// <summary>What one message loses: the fixed hop-by-hop fields, and the other fields its Connection names.</summary>
    private readonly record struct Rules(bool KeepUpgrade, bool KeepTransferEncoding, List<string>? Named)
    {
        public bool Removes(string name)
        {
            if (RemovesAnyway(name))
            {
                return true;
            }

            if (Named is { } named)
            {
                foreach (var option in named)
                {
                    if (string.Equals(name, option, StringComparison.OrdinalIgnoreCase))
                    {
                        return true;
                    }
                }
            }

            return false;
        }

        /// <summary>
        /// Connection, Proxy-Connection (non-standard, sent by old clients to proxies), Keep-Alive, TE,
        /// Transfer-Encoding (unless kept), Proxy-Authorization, HTTP2-Settings and Upgrade (unless kept). Told apart
        /// by length first: most names a message carries have none of these lengths.
        /// </summary>
        public bool RemovesAnyway(ReadOnlySpan<char> name) => name.Length switch
        {
            2 => name.Equals("TE", StringComparison.OrdinalIgnoreCase),
            7 => !KeepUpgrade && name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase),
            10 => name.Equals("Connection", StringComparison.OrdinalIgnoreCase) || name.Equals("Keep-Alive", StringComparison.OrdinalIgnoreCase),
            14 => name.Equals("HTTP2-Settings", StringComparison.OrdinalIgnoreCase),
            16 => name.Equals("Proxy-Connection", StringComparison.OrdinalIgnoreCase),
            17 => !KeepTransferEncoding && name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase),
            19 => name.Equals("Proxy-Authorization", StringComparison.OrdinalIgnoreCase),
            _ => false,
        };
    }

    /// <summary>
    /// Whether the request asks to switch to a protocol the proxy relays: Connection lists "upgrade" and Upgrade names a
    /// protocol other than <c>h2c</c> (RFC 9110 §7.8).
    /// </summary>
    /// <remarks>
    /// <c>Upgrade: h2c</c> (RFC 7540 §3.2, which RFC 9113 §3.1 deprecates; curl <c>--http2</c> sends it on plain http,
    /// also through a proxy) is never relayed: Upgrade is hop-by-hop (RFC 9110 §7.6.1), and a relayed 101 would turn the
    /// connection into an opaque byte relay the proxy can no longer show. The proxy either accepts it itself
    /// (<see cref="Http2.H2cUpgrade"/>, in plain tunnels) or answers in HTTP/1.1, as RFC 9110 §7.8 allows ("a server MAY
    /// ignore a received Upgrade header field"). Upgrade and the HTTP2-Settings field named in Connection are then
    /// removed as hop-by-hop.
    /// </remarks>
    /// <param name="head">The request.</param>
    /// <returns><see langword="true"/> for an upgrade request to relay.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="head"/> is null.</exception>
    public static bool IsUpgradeRequest(HttpRequestHead head)
    {
        ArgumentNullException.ThrowIfNull(head);
        if (!HasConnectionOption(head.Headers, "upgrade"))
        {
            return false;
        }

        foreach (string value in head.Headers.GetValues("Upgrade"))
        {
            foreach (ReadOnlySpan<char> protocol in HttpChars.EnumerateList(value))
            {
                if (!protocol.Equals("h2c", StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Whether the connection stays open after this message (RFC 9112 §9.3).</summary>
    /// <param name="version">The message's HTTP version.</param>
    /// <param name="headers">The message's fields.</param>
    /// <returns><see langword="true"/> when persistent.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static bool KeepAlive(Version version, HttpHeaders headers)
    {
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(headers);

        // RFC 9112 §9.3: "close" ends persistence in any version; HTTP/1.1 is persistent by default;
        // HTTP/1.0 only with "keep-alive" (§C.2.2).
        if (HasConnectionOption(headers, "close"))
        {
            return false;
        }

        if (version.Major == 1 && version.Minor == 1)
        {
            return true;
        }

        return version.Major == 1 && version.Minor == 0 && HasConnectionOption(headers, "keep-alive");
    }

    /// <summary>Whether a Connection field line lists <paramref name="option"/> (case-insensitive).</summary>
    internal static bool HasConnectionOption(HttpHeaders headers, string option)
    {
        foreach (HttpHeader h in headers)
        {
            if (string.Equals(h.Name, "Connection", StringComparison.OrdinalIgnoreCase))
            {
                foreach (ReadOnlySpan<char> element in HttpChars.EnumerateList(h.Value))
                {
                    if (element.Equals(option, StringComparison.OrdinalIgnoreCase))
                    {
                        return true;
                    }
                }
            }
        }

        return false;
    }
}
