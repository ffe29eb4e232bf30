using System.Text;

namespace Interpose.Core.Flows;

/// <summary>
/// A request as a curl command line (<c>flows export --format curl</c>, the web UI's "copy as curl"): each request as a curl command line for a POSIX shell (bash for a binary body,
/// which is fed through <c>printf</c> in a process substitution). The body is sent as recorded (still content-encoded,
/// with its Content-Encoding header); curl computes the framing itself.
/// </summary>
/// <remarks>
/// Every recorded value is single-quoted, so the shell expands nothing, but curl itself reads two of them: a URL is a
/// glob pattern (<c>[1-3]</c>, <c>{a,b}</c>: one request per match) unless <c>--globoff</c> is given, and a
/// <c>--data-binary</c> value that starts with <c>@</c> names a file to read and upload. So each command carries
/// <c>--globoff</c>, and a printable body goes in <c>--data-raw</c> (curl 7.43 and later), which takes no <c>@</c>.
/// </remarks>
public static class CurlScript
{
    /// <summary>Fields curl sets from the command itself: the framing (RFC 9112 §6), and Connection-specific ones
    /// (RFC 9110 §7.6.1) that belong to the recorded connection, not to a new one.</summary>
    private static readonly HashSet<string> Skipped = new(StringComparer.OrdinalIgnoreCase)
    {
        "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Upgrade",
    };

    /// <summary>One command per flow, each on its own line, after a shebang.</summary>
    /// <param name="flows">The flows whose requests become commands.</param>
    /// <returns>The script.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    public static string Script(IEnumerable<HttpFlow> flows)
    {
        ArgumentNullException.ThrowIfNull(flows);
        var sb = new StringBuilder("#!/bin/bash\n");
        foreach (var flow in flows)
        {
            Append(sb, flow);
            sb.Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>One flow's request as one curl command line, without a shebang or a newline.</summary>
    /// <param name="flow">The flow.</param>
    /// <returns>The command.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    public static string Command(HttpFlow flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        var sb = new StringBuilder();
        Append(sb, flow);
        return sb.ToString();
    }

    private static void Append(StringBuilder sb, HttpFlow flow)
    {
        var request = flow.Request;
        sb.Append("curl --globoff ").Append(Quote(request.Url));
        if (request.Method != "GET" || !request.Body.Content.IsEmpty)
        {
            sb.Append(" -X ").Append(Quote(request.Method));
        }

        foreach (var header in request.Headers)
        {
            if (!Skipped.Contains(header.Name) && !header.Name.StartsWith(':'))
            {
                sb.Append(" -H ").Append(Quote(header.Name + ": " + header.Value));
            }
        }

        var body = request.Body.Content.Span;
        if (!body.IsEmpty)
        {
            if (IsPrintable(body))
            {
                sb.Append(" --data-raw ").Append(Quote(Encoding.UTF8.GetString(body)));
            }
            else
            {
                sb.Append(" --data-binary @<(printf '");
                foreach (var b in body)
                {
                    sb.Append("\\x").Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                }

                sb.Append("')");
            }
        }

        if (request.Body.IsTruncated)
        {
            sb.Append(" # body truncated: ").Append(request.Body.Content.Length).Append(" of ").Append(request.Body.Length).Append(" bytes recorded");
        }
        else if (request.Body.IsIncomplete)
        {
            // All the bytes that passed were kept, but the exchange failed before the body ended: not the whole body.
            sb.Append(" # body incomplete: the exchange failed after ").Append(request.Body.Length).Append(" bytes");
        }
    }

    private static bool IsPrintable(ReadOnlySpan<byte> body)
    {
        foreach (var b in body)
        {
            if (b is < 0x20 and not (byte)'\n' and not (byte)'\r' and not (byte)'\t' or 0x7f or >= 0x80)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Single quotes, with each <c>'</c> written as <c>'\''</c>: nothing inside is expanded by the shell.</summary>
    private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
