using System.Globalization;
using Interpose.Certificates;
using Microsoft.Extensions.Logging;

namespace Interpose.Cli;

/// <summary>
/// <c>interpose run</c>'s check of its CA's dates at start: a CA that has expired cannot sign a leaf any client accepts
/// (every interception would fail), so the command refuses to start; one about to expire is warned about.
/// </summary>
internal static class CaValidityCheck
{
    /// <summary>A CA expiring within this period is warned about at start: 30 days, time to make a new one and get
    /// every client to trust it (the lead time certificate monitors and Let's Encrypt's expiry mails give).</summary>
    public static readonly TimeSpan WarningPeriod = TimeSpan.FromDays(30);

    /// <summary>Refuses an expired CA; logs a warning (event 3005) for one expiring within <see cref="WarningPeriod"/>.</summary>
    /// <param name="authority">The CA the proxy is to sign leaves with.</param>
    /// <param name="ownCa">Whether the user gave the CA (<c>--ca-cert</c> or <c>--ca-p12</c>) rather than the install's.</param>
    /// <param name="now">The current time.</param>
    /// <param name="logger">Where the warning goes.</param>
    /// <exception cref="CertificateException">The CA has expired.</exception>
    public static void Check(CertificateAuthority authority, bool ownCa, DateTimeOffset now, ILogger logger)
    {
        var certificate = authority.Certificate;
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        var date = notAfter.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        if (now >= notAfter)
        {
            throw new CertificateException(ownCa
                ? $"The CA {certificate.Subject} expired on {date}: no client would accept a certificate it signs; give one that is still valid."
                : $"The CA {certificate.Subject} expired on {date}: no client would accept a certificate it signs; create a new one (move the old files away and run: interpose ca init).");
        }

        if (notAfter - now <= WarningPeriod)
        {
            CliLog.CaExpiresSoon(logger, certificate.Subject, date, (int)Math.Ceiling((notAfter - now).TotalDays));
        }
    }
}
