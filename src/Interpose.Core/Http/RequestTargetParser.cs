using System.Net;
using System.Net.Sockets;

namespace Interpose.Core.Http;

/// <summary>
/// Parses and validates a request-target (RFC 9112 §3.2) for the method it came with. Hosts are restricted to
/// what can name a server: DNS-style reg-names (letters, digits, '-', '.', '_'), IPv4, or bracketed IPv6 without
/// a zone; ports are 1..65535 with at most five digits, so values that wrap modulo 2^16 or 2^32 never pass.
/// </summary>
public static class RequestTargetParser
{
    /// <summary>Longest host accepted: 253, the DNS name limit (RFC 1035 §2.3.4, without the trailing dot).</summary>
    public const int MaxHostLength = 253;

    private const int MaxPortDigits = 5;

    private static readonly System.Buffers.SearchValues<char> Ipv6Chars = System.Buffers.SearchValues.Create("0123456789abcdefABCDEF:.");

    /// <summary>Parses <paramref name="target"/> as sent with <paramref name="method"/>.</summary>
    /// <param name="method">The request method; CONNECT requires authority-form and OPTIONS alone may use "*".</param>
    /// <param name="target">The raw request-target.</param>
    /// <returns>The parsed target.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="HttpProtocolException">The target is malformed or has the wrong form for the method (<see cref="RejectionReason.InvalidRequestTarget"/>).</exception>
    public static RequestTarget Parse(string method, string target)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(target);
        if (!Http1Parser.IsValidTargetText(target))
        {
            Rejections.Throw(RejectionReason.InvalidRequestTarget);
        }

        // RFC 9112 §3.2.3: CONNECT uses authority-form = uri-host ":" port, and only it does.
        if (string.Equals(method, "CONNECT", StringComparison.Ordinal))
        {
            if (!TryParseAuthority(target, portRequired: true, defaultPort: 0, out string? host, out int port))
            {
                Rejections.Throw(RejectionReason.InvalidRequestTarget);
            }

            return new RequestTarget(RequestTargetForm.Authority, null, host, port, string.Empty);
        }

        // RFC 9112 §3.2.1: origin-form = absolute-path [ "?" query ].
        if (target[0] == '/')
        {
            CheckPathAndQuery(target);
            return new RequestTarget(RequestTargetForm.Origin, null, null, 0, target);
        }

        // RFC 9112 §3.2.4: asterisk-form only for a server-wide OPTIONS.
        if (target == "*")
        {
            if (!string.Equals(method, "OPTIONS", StringComparison.Ordinal))
            {
                Rejections.Throw(RejectionReason.InvalidRequestTarget);
            }

            return new RequestTarget(RequestTargetForm.Asterisk, null, null, 0, "*");
        }

        // RFC 9112 §3.2.2: absolute-form = absolute-URI; Interpose proxies only http and https.
        string scheme;
        int defaultPort;
        int authorityStart;
        if (target.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            scheme = "http";
            defaultPort = 80;
            authorityStart = 7;
        }
        else if (target.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            scheme = "https";
            defaultPort = 443;
            authorityStart = 8;
        }
        else
        {
            throw Rejections.Create(RejectionReason.InvalidRequestTarget);
        }

        int authorityEnd = target.AsSpan(authorityStart).IndexOfAny('/', '?', '#');
        authorityEnd = authorityEnd < 0 ? target.Length : authorityStart + authorityEnd;
        string authority = target[authorityStart..authorityEnd];

        // RFC 9110 §4.2.4: userinfo is deprecated and a recipient SHOULD treat it as an error; an '@' inside the
        // authority is a classic host-confusion trick. TryParseAuthority rejects '@' with every other odd character.
        if (!TryParseAuthority(authority, portRequired: false, defaultPort, out string? absHost, out int absPort))
        {
            Rejections.Throw(RejectionReason.InvalidRequestTarget);
        }

        string pathAndQuery = target[authorityEnd..];
        CheckPathAndQuery(pathAndQuery);
        if (pathAndQuery.Length == 0 || pathAndQuery[0] == '?')
        {
            // RFC 9112 §3.2.1: an empty path becomes "/" in origin-form.
            pathAndQuery = "/" + pathAndQuery;
        }

        return new RequestTarget(RequestTargetForm.Absolute, scheme, absHost, absPort, pathAndQuery);
    }

    /// <summary>Whether <paramref name="authority"/> is a valid <c>host[:port]</c> under the rules above (used for Host values).</summary>
    /// <param name="authority">The text to check.</param>
    /// <param name="portRequired">Whether a port must be present.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="authority"/> is null.</exception>
    public static bool IsValidAuthority(string authority, bool portRequired)
    {
        ArgumentNullException.ThrowIfNull(authority);
        return TryParseAuthority(authority, portRequired, 0, out _, out _, materialize: false);
    }

    /// <summary>
    /// Whether <paramref name="host"/> can name an origin as a request's host: a reg-name of letters, digits, '-', '.'
    /// and '_' (an IPv4 literal among them), or an IPv6 address without brackets and without a zone; an
    /// internationalized name must be given in A-labels (punycode).
    /// </summary>
    /// <param name="host">The host, as <see cref="RequestTarget.Host"/> holds it.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    internal static bool IsValidHost(string host)
    {
        // RFC 3986 §3.2.2: host = IP-literal / IPv4address / reg-name, restricted as for a parsed target (above): a
        // space, CR, LF, '/', '@' or a non-ASCII character would reach the Host-less :authority (RFC 9113 §8.3.1), the
        // SNI (RFC 6066 §3: a DNS host name in ASCII) and the resolver.
        ReadOnlySpan<char> s = host;
        if (s.Contains(':'))
        {
            return !s.ContainsAnyExcept(Ipv6Chars)
                && IPAddress.TryParse(s, out IPAddress? address) && address.AddressFamily == AddressFamily.InterNetworkV6;
        }

        return IsRegName(s);
    }

    /// <summary>
    /// The path and query of an absolute URL exactly as written (origin-form for the request line), without what
    /// <see cref="Uri"/> would do to it: no dot-segment removal, no unescaping of <c>%7E</c>, no re-escaping. A rule
    /// that rewrites a URL as text (map-remote, an intercept edit) must send what it wrote, as mitmproxy does.
    /// </summary>
    /// <param name="absoluteUrl">An absolute http or https URL (its scheme and authority already checked).</param>
    /// <returns>The text after the authority up to a fragment, "/" first when it has no path (RFC 9112 §3.2.1); null
    /// when it has a character a request-target cannot carry (a space, a control, non-ASCII) or the authority is not
    /// delimited as RFC 3986 §3.2 says.</returns>
    internal static string? RawPathAndQuery(string absoluteUrl)
    {
        var schemeEnd = absoluteUrl.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0)
        {
            return null;
        }

        // RFC 3986 §3.2: the authority ends at the first "/", "?" or "#"; a backslash there is Uri's leniency, which
        // would make the raw text and the parsed URL disagree.
        var authorityStart = schemeEnd + 3;
        var authorityLength = absoluteUrl.AsSpan(authorityStart).IndexOfAny('/', '?', '#');
        var authorityEnd = authorityLength < 0 ? absoluteUrl.Length : authorityStart + authorityLength;
        if (absoluteUrl.AsSpan(authorityStart, authorityEnd - authorityStart).Contains('\\'))
        {
            return null;
        }

        // RFC 9112 §3.2: a fragment is never part of a request-target.
        var fragment = absoluteUrl.IndexOf('#', authorityEnd);
        var pathAndQuery = absoluteUrl[authorityEnd..(fragment < 0 ? absoluteUrl.Length : fragment)];
        if (pathAndQuery.Length == 0 || pathAndQuery[0] == '?')
        {
            pathAndQuery = "/" + pathAndQuery;
        }

        return Http1Parser.IsValidTargetText(pathAndQuery) ? pathAndQuery : null;
    }

    private static void CheckPathAndQuery(string pathAndQuery)
    {
        // RFC 9112 §3.2: a fragment is never part of a request-target.
        if (pathAndQuery.Contains('#', StringComparison.Ordinal))
        {
            Rejections.Throw(RejectionReason.InvalidRequestTarget);
        }
    }

    private static bool TryParseAuthority(string authority, bool portRequired, int defaultPort, out string? host, out int port, bool materialize = true)
    {
        host = null;
        port = defaultPort;
        ReadOnlySpan<char> s = authority;
        ReadOnlySpan<char> hostPart;
        ReadOnlySpan<char> rest;
        if (s.Length > 0 && s[0] == '[')
        {
            // RFC 3986 §3.2.2: IP-literal = "[" IPv6address "]"; IPvFuture and zone identifiers are refused.
            int close = s.IndexOf(']');
            if (close < 0)
            {
                return false;
            }

            hostPart = s[1..close];
            rest = s[(close + 1)..];
            if (hostPart.IsEmpty || hostPart.ContainsAnyExcept(Ipv6Chars)
                || !IPAddress.TryParse(hostPart, out IPAddress? address) || address.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }

            host = materialize ? hostPart.ToString() : null;
        }
        else
        {
            int colon = s.IndexOf(':');
            hostPart = colon < 0 ? s : s[..colon];
            rest = colon < 0 ? [] : s[colon..];
            if (!IsRegName(hostPart))
            {
                return false;
            }

            host = materialize ? hostPart.ToString().ToLowerInvariant() : null;
        }

        if (rest.IsEmpty)
        {
            return !portRequired;
        }

        // RFC 3986 §3.2.3: port = *DIGIT; an empty port is refused here (ambiguous between peers).
        if (rest[0] != ':' || rest.Length == 1 || rest.Length - 1 > MaxPortDigits)
        {
            return false;
        }

        int value = 0;
        foreach (char c in rest[1..])
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            value = (value * 10) + (c - '0');
        }

        if (value is < 1 or > 65535)
        {
            return false;
        }

        port = value;
        return true;
    }

    private static bool IsRegName(ReadOnlySpan<char> host)
    {
        if (host.IsEmpty || host.Length > MaxHostLength)
        {
            return false;
        }

        foreach (char c in host)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_'))
            {
                return false;
            }
        }

        return true;
    }
}
