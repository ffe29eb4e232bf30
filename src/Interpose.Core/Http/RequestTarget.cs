using System.Globalization;

namespace Interpose.Core.Http;

/// <summary>A parsed request-target (RFC 9112 §3.2).</summary>
/// <param name="Form">Which of the four forms it was.</param>
/// <param name="Scheme">"http" or "https" (lower case) for absolute-form; otherwise <see langword="null"/>.</param>
/// <param name="Host">The host for absolute- and authority-form: a reg-name (lower-cased), IPv4 literal, or IPv6 literal without brackets; otherwise <see langword="null"/>.</param>
/// <param name="Port">The port (the scheme default when absolute-form omits it); 0 when there is no authority.</param>
/// <param name="PathAndQuery">The path and query: origin-form as sent, absolute-form's part after the authority ("/" when empty), "*" for asterisk-form, empty for authority-form.</param>
public readonly record struct RequestTarget(RequestTargetForm Form, string? Scheme, string? Host, int Port, string PathAndQuery)
{
    /// <summary><c>host[:port]</c> with IPv6 hosts bracketed; the port is omitted only when it is the scheme's
    /// default in absolute-form. <see langword="null"/> when there is no host.</summary>
    public string? Authority
    {
        get
        {
            if (Host is null)
            {
                return null;
            }

            string host = Host.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host;
            bool defaultPort = Form == RequestTargetForm.Absolute
                && ((Port == 80 && string.Equals(Scheme, "http", StringComparison.Ordinal))
                    || (Port == 443 && string.Equals(Scheme, "https", StringComparison.Ordinal)));
            return defaultPort ? host : host + ":" + Port.ToString(CultureInfo.InvariantCulture);
        }
    }
}
