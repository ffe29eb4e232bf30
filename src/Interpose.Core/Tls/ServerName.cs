namespace Interpose.Core.Tls;

/// <summary>Rules for the server name a ClientHello carries (RFC 6066 §3).</summary>
public static class ServerName
{
    /// <summary>
    /// RFC 6066 §3: the SNI is a bare host name, but some clients send "host:port" (Go's tls.Config.ServerName set from
    /// req.Host, as hey does); the port is dropped so the certificate and the origin's SNI name the host. Anything
    /// else (an IPv6-looking value with several colons, a non-numeric suffix, a trailing colon) is left as it is.
    /// </summary>
    /// <param name="serverName">The ClientHello's server name, or null.</param>
    /// <returns>The name without a trailing ":digits".</returns>
    public static string? WithoutPort(string? serverName)
    {
        var colon = serverName?.LastIndexOf(':') ?? -1;
        if (colon <= 0 || serverName!.IndexOf(':') != colon || colon == serverName.Length - 1)
        {
            return serverName;
        }

        foreach (var c in serverName.AsSpan(colon + 1))
        {
            if (!char.IsAsciiDigit(c))
            {
                return serverName;
            }
        }

        return serverName[..colon];
    }
}
