using System.Globalization;

namespace Interpose.Core.Http;

/// <summary>The authority (host and port) of an http or https URI, as the Host field carries it (RFC 9110 §4.2, §7.2).</summary>
public static class Authority
{
    /// <summary>The port a scheme implies when none is given: 443 for https, 80 otherwise (RFC 9110 §4.2.1, §4.2.2).</summary>
    /// <param name="scheme">"http" or "https" (lower case, as the request-target parser gives it).</param>
    /// <returns>The default port.</returns>
    public static int DefaultPort(string scheme) => scheme == "https" ? 443 : 80;

    /// <summary>
    /// The Host field value for <paramref name="host"/> and <paramref name="port"/>: an IPv6 literal in brackets
    /// (RFC 3986 §3.2.2), the port left out when it is the scheme's default (RFC 9110 §4.2.3).
    /// </summary>
    /// <param name="scheme">"http" or "https".</param>
    /// <param name="host">A host name, IPv4 literal or IPv6 literal without brackets.</param>
    /// <param name="port">The port.</param>
    /// <returns>The authority text.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="host"/> is null.</exception>
    public static string Format(string scheme, string host, int port)
    {
        ArgumentNullException.ThrowIfNull(host);
        var h = host.Contains(':', StringComparison.Ordinal) ? "[" + host + "]" : host;
        return port == DefaultPort(scheme) ? h : h + ":" + port.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Whether a Host field value names the same authority as the target: host compared case-insensitively
    /// (RFC 9110 §4.2.3), a missing port read as the scheme's default.
    /// </summary>
    /// <param name="hostField">The Host field value, or null when absent.</param>
    /// <param name="scheme">The target's scheme.</param>
    /// <param name="host">The target's host (an IPv6 literal without brackets).</param>
    /// <param name="port">The target's port.</param>
    /// <returns><see langword="true"/> when they are the same authority.</returns>
    public static bool Matches(string? hostField, string scheme, string host, int port)
    {
        if (hostField is null)
        {
            return false;
        }

        var h = hostField;
        var p = DefaultPort(scheme);
        var colon = h.LastIndexOf(':');
        if (colon > 0 && h.IndexOf(']', colon) < 0 && int.TryParse(h.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
        {
            p = parsed;
            h = h[..colon];
        }

        h = h.Trim('[', ']');
        return p == port && string.Equals(h, host, StringComparison.OrdinalIgnoreCase);
    }
}
