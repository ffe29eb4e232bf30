using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Interpose.Certificates;

/// <summary>A validated name to certify: a lower-case DNS name or an IP address literal.</summary>
/// <param name="Name">The canonical name: the lower-case DNS name, or the address in its standard text form.</param>
/// <param name="Address">The address when the name is an IP literal, else <see langword="null"/>.</param>
internal readonly record struct LeafHostName(string Name, IPAddress? Address)
{
    // RFC 1035 §2.3.4: a name is at most 255 octets on the wire, which leaves 253 characters in dotted text form.
    internal const int MaxNameLength = 253;

    // RFC 1035 §2.3.4: labels are 63 octets or less.
    internal const int MaxLabelLength = 63;

    /// <summary>Validates and canonicalises a host name or an IP literal (IPv6 with or without brackets).</summary>
    /// <exception cref="CertificateException">The name is empty, too long, has a bad label or character, or is a wildcard.</exception>
    public static LeafHostName Parse(string hostNameOrIp)
    {
        ArgumentNullException.ThrowIfNull(hostNameOrIp);
        var text = hostNameOrIp;
        if (text.Length == 0)
        {
            throw Invalid(hostNameOrIp, "it is empty");
        }

        // RFC 3986 §3.2.2: an IPv6 literal in a URI authority is bracketed; the certificate holds the bare address.
        if (text.Length > 2 && text[0] == '[' && text[^1] == ']')
        {
            var inner = text[1..^1];
            if (IPAddress.TryParse(inner, out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6 && !inner.Contains('%', StringComparison.Ordinal))
            {
                return new LeafHostName(v6.ToString(), v6);
            }

            throw Invalid(hostNameOrIp, "it is not an IPv6 address");
        }

        if (text.Contains(':', StringComparison.Ordinal))
        {
            // A zone id (fe80::1%eth0) is local to this machine and has no place in a certificate (RFC 6874 §1).
            if (!text.Contains('%', StringComparison.Ordinal) && IPAddress.TryParse(text, out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6)
            {
                return new LeafHostName(v6.ToString(), v6);
            }

            throw Invalid(hostNameOrIp, "it is not an IPv6 address");
        }

        // Only the dotted-quad form is an IPv4 literal; IPAddress.TryParse would also read "10" or "1.2" as addresses.
        if (IsDottedQuad(text))
        {
            if (IPAddress.TryParse(text, out var v4) && v4.AddressFamily == AddressFamily.InterNetwork)
            {
                return new LeafHostName(v4.ToString(), v4);
            }

            throw Invalid(hostNameOrIp, "it is not an IPv4 address");
        }

        return new LeafHostName(ParseDnsName(hostNameOrIp), null);
    }

    private static string ParseDnsName(string original)
    {
        var name = original;

        // RFC 1034 §3.1: a trailing dot marks an absolute name; the certificate names the host without it (RFC 6125 §6.2.1).
        if (name.EndsWith('.'))
        {
            name = name[..^1];
        }

        if (name.Length == 0)
        {
            throw Invalid(original, "it is empty");
        }

        if (name.Length > MaxNameLength)
        {
            throw Invalid(original, $"it is longer than {MaxNameLength} characters");
        }

        if (name.Contains('*', StringComparison.Ordinal))
        {
            throw Invalid(original, "wildcards are not forged; ask for the exact host");
        }

        var labelStart = 0;
        for (var i = 0; i <= name.Length; i++)
        {
            if (i < name.Length && name[i] != '.')
            {
                var c = name[i];

                // RFC 5280 §4.2.1.6: dNSName uses the "preferred name syntax" of RFC 1034 §3.5 (letters, digits,
                // hyphen); underscore is tolerated because real hosts use it and clients match it byte for byte.
                if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_'))
                {
                    var why = c > 0x7F
                        ? "it is not ASCII; use its xn-- (IDNA A-label) form"
                        : char.IsControl(c)
                            ? string.Create(CultureInfo.InvariantCulture, $"it contains the control character U+{(int)c:X4}")
                            : string.Create(CultureInfo.InvariantCulture, $"it contains the character '{c}' (U+{(int)c:X4})");
                    throw Invalid(original, why);
                }

                continue;
            }

            var length = i - labelStart;
            if (length == 0)
            {
                throw Invalid(original, "it has an empty label");
            }

            if (length > MaxLabelLength)
            {
                throw Invalid(original, $"a label is longer than {MaxLabelLength} characters");
            }

            // RFC 1034 §3.5: labels start with a letter or digit (RFC 1123 §2.1) and do not end with a hyphen.
            if (name[labelStart] == '-' || name[i - 1] == '-')
            {
                throw Invalid(original, "a label starts or ends with a hyphen");
            }

            labelStart = i + 1;
        }

        // RFC 4343: DNS names compare case-insensitively; certify and cache one spelling.
        return name.ToLowerInvariant();
    }

    private static bool IsDottedQuad(string text)
    {
        var dots = 0;
        foreach (var c in text)
        {
            if (c == '.')
            {
                dots++;
            }
            else if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return dots == 3;
    }

    private static CertificateException Invalid(string name, string why)
    {
        // The message is one line: control characters in what a client sent must not break it (or forge log lines).
        var shown = name.Length > 80 ? string.Concat(name.AsSpan(0, 80), "...") : name;
        shown = string.Create(shown.Length, shown, static (chars, source) =>
        {
            for (var i = 0; i < source.Length; i++)
            {
                chars[i] = char.IsControl(source[i]) ? '?' : source[i];
            }
        });
        return new CertificateException($"Cannot forge a certificate for '{shown}': {why}.");
    }
}
