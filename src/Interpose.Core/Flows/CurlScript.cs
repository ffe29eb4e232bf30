using System.Buffers;
using System.Globalization;
using System.Text;
using Interpose.Core.Http;

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
/// <c>-H</c> reads a value that starts with <c>@</c> as a file of header lines (curl 7.55 and later), and curl has no
/// way to escape that <c>@</c>; a header line starts with its field's name, and a name that is not an RFC 9110 §5.1
/// token (none starts with <c>@</c>) is no field curl could send as recorded, so such a field is left out and a
/// comment on the command says how many were. So is a field whose value holds CR, LF or NUL (RFC 9110 §5.5): inside
/// the quotes a line break would split the <c>-H</c> argument into header lines the request never had, and break a
/// command meant to be one line.
/// </remarks>
public static class CurlScript
{
    private const string Shebang = "#!/bin/bash\n";

    /// <summary>RFC 9110 §5.5: CR, LF and NUL are never allowed in a field value.</summary>
    private static readonly SearchValues<char> InvalidValueChars = SearchValues.Create("\r\n\0");

    /// <summary>The body bytes one piece of a command holds: a byte is at most four characters (<c>\xHH</c>, or
    /// <c>'\''</c> for a quote), so a piece is at most 16 KiB of text, whatever the body's size.</summary>
    private const int BodyBytesPerPiece = 4096;

    /// <summary>The most characters a body byte becomes: <c>\xHH</c>, or <c>'\''</c> for a quote.</summary>
    private const int MaxCharsPerBodyByte = 4;

    /// <summary>Fields curl sets from the command itself: the framing (RFC 9112 §6), and Connection-specific ones
    /// (RFC 9110 §7.6.1) that belong to the recorded connection, not to a new one.</summary>
    private static readonly HashSet<string> Skipped = new(StringComparer.OrdinalIgnoreCase)
    {
        "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Upgrade",
    };

    /// <summary>One command per flow, each on its own line, after a shebang, as one string: for a few flows held in
    /// memory already; <see cref="WriteScriptAsync"/> writes a store's flows as they are read.</summary>
    /// <param name="flows">The flows whose requests become commands.</param>
    /// <returns>The script.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    public static string Script(IEnumerable<HttpFlow> flows)
    {
        ArgumentNullException.ThrowIfNull(flows);
        var sb = new StringBuilder(Shebang);
        var scratch = new char[BodyBytesPerPiece * MaxCharsPerBodyByte];
        foreach (var flow in flows)
        {
            foreach (var piece in Pieces(flow, scratch))
            {
                sb.Append(piece.Span);
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>
    /// Writes the script <see cref="Script"/> returns to <paramref name="output"/> as <paramref name="flows"/> yields
    /// them: each command is written, a piece at a time, and flushed before the next flow is asked for, so only the
    /// flow being written is held, whatever the number of flows and the size of their bodies.
    /// </summary>
    /// <param name="flows">The flows whose requests become commands.</param>
    /// <param name="output">Where the script goes; flushed after each command, left open.</param>
    /// <param name="cancellationToken">Stops the export.</param>
    /// <returns>The number of commands written.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="IOException"><paramref name="output"/> could not be written.</exception>
    public static async Task<int> WriteScriptAsync(IAsyncEnumerable<HttpFlow> flows, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flows);
        ArgumentNullException.ThrowIfNull(output);
        await output.WriteAsync(Shebang.AsMemory(), cancellationToken);
        var scratch = new char[BodyBytesPerPiece * MaxCharsPerBodyByte];
        var count = 0;
        await foreach (var flow in flows.WithCancellation(cancellationToken))
        {
            foreach (var piece in Pieces(flow, scratch))
            {
                await output.WriteAsync(piece, cancellationToken);
            }

            await output.WriteAsync("\n".AsMemory(), cancellationToken);
            await output.FlushAsync(cancellationToken);
            count++;
        }

        await output.FlushAsync(cancellationToken);
        return count;
    }

    /// <summary>One flow's request as one curl command line, without a shebang or a newline.</summary>
    /// <param name="flow">The flow.</param>
    /// <returns>The command.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    public static string Command(HttpFlow flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        var sb = new StringBuilder();
        foreach (var piece in Pieces(flow, new char[BodyBytesPerPiece * MaxCharsPerBodyByte]))
        {
            sb.Append(piece.Span);
        }

        return sb.ToString();
    }

    /// <summary>The command in pieces, to be written in order: a body is written from <paramref name="scratch"/>, which
    /// each piece of it reuses, so a piece must be written before the next is asked for.</summary>
    private static IEnumerable<ReadOnlyMemory<char>> Pieces(HttpFlow flow, char[] scratch)
    {
        var request = flow.Request;
        yield return ("curl --globoff " + Quote(request.Url)).AsMemory();
        if (request.Method != "GET" || !request.Body.Content.IsEmpty)
        {
            yield return (" -X " + Quote(request.Method)).AsMemory();
        }

        var leftOut = 0;
        var valuesLeftOut = 0;
        foreach (var header in request.Headers)
        {
            if (Skipped.Contains(header.Name) || header.Name.StartsWith(':'))
            {
                continue;
            }

            // RFC 9110 §5.1: field-name = token. Any other name (only a flow read from JSON can hold one) could start the
            // -H argument with @, which curl reads as a file of headers to send instead.
            if (!HttpHeaders.IsValidName(header.Name))
            {
                leftOut++;
                continue;
            }

            // RFC 9110 §5.5: a field value never holds CR, LF or NUL; only a flow read from JSON can. A line break would
            // make curl send the rest of the value as header lines of its own, fields the recorded request never had.
            if (header.Value.AsSpan().ContainsAny(InvalidValueChars))
            {
                valuesLeftOut++;
                continue;
            }

            yield return (" -H " + Quote(header.Name + ": " + header.Value)).AsMemory();
        }

        var body = request.Body.Content;
        if (!body.IsEmpty)
        {
            var printable = IsPrintable(body.Span);
            yield return (printable ? " --data-raw '" : " --data-binary @<(printf '").AsMemory();
            for (var at = 0; at < body.Length; at += BodyBytesPerPiece)
            {
                var chunk = body.Slice(at, Math.Min(BodyBytesPerPiece, body.Length - at));
                yield return scratch.AsMemory(0, printable ? QuotedText(chunk.Span, scratch) : PrintfEscapes(chunk.Span, scratch));
            }

            yield return (printable ? "'" : "')").AsMemory();
        }

        if (leftOut > 0)
        {
            yield return $" # {leftOut} header field(s) left out: their names are not RFC 9110 tokens".AsMemory();
        }

        if (valuesLeftOut > 0)
        {
            yield return $" # {valuesLeftOut} header field(s) left out: their values hold CR, LF or NUL (RFC 9110 §5.5)".AsMemory();
        }

        if (request.Body.IsTruncated)
        {
            yield return $" # body truncated: {request.Body.Content.Length} of {request.Body.Length} bytes recorded".AsMemory();
        }
        else if (request.Body.IsIncomplete)
        {
            // All the bytes that passed were kept, but the exchange failed before the body ended: not the whole body.
            yield return $" # body incomplete: the exchange failed after {request.Body.Length} bytes".AsMemory();
        }
    }

    /// <summary>Printable bytes (ASCII, <see cref="IsPrintable"/>) as the inside of a single-quoted word, each
    /// <c>'</c> as <c>'\''</c>; returns the characters written.</summary>
    private static int QuotedText(ReadOnlySpan<byte> bytes, Span<char> output)
    {
        var written = 0;
        foreach (var b in bytes)
        {
            if (b == (byte)'\'')
            {
                "'\\''".CopyTo(output[written..]);
                written += 4;
            }
            else
            {
                output[written++] = (char)b;
            }
        }

        return written;
    }

    /// <summary>Bytes as printf escapes, <c>\xHH</c> each; returns the characters written.</summary>
    private static int PrintfEscapes(ReadOnlySpan<byte> bytes, Span<char> output)
    {
        var written = 0;
        foreach (var b in bytes)
        {
            output[written++] = '\\';
            output[written++] = 'x';
            b.TryFormat(output[written..], out var digits, "x2", CultureInfo.InvariantCulture);
            written += digits;
        }

        return written;
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
