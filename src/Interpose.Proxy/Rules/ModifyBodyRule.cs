using System.Text;
using System.Text.RegularExpressions;
using Interpose.Core.Filters;

namespace Interpose.Proxy.Rules;

/// <summary>
/// mitmproxy's <c>--modify-body [|filter]|regex|replacement</c>: every match of the regex in the body of a matching
/// request or response is replaced (Python's <c>re.sub</c> over bytes, with DOTALL). The body is content-decoded
/// first and encoded again afterwards, and sent with a fresh length. Without a filter the rule applies to requests and
/// responses; <c>~q</c>/<c>~s</c> choose the side. A replacement <c>@path</c> is read from that file each time.
/// </summary>
/// <remarks>The body must be held whole to be rewritten: up to <see cref="ProxyOptions.MaxBufferedBodyBytes"/>, past
/// which the exchange fails with a 502 that says so.</remarks>
public sealed class ModifyBodyRule
{
    private readonly string _replacement;

    private ModifyBodyRule(string spec, FlowFilter? filter, Regex pattern, string replacement, string? replacementFile)
    {
        Spec = spec;
        Filter = filter;
        Pattern = pattern;
        _replacement = replacement;
        ReplacementFile = replacementFile;
    }

    /// <summary>The spec the rule was parsed from.</summary>
    public string Spec { get; }

    /// <summary>The messages the rule applies to; null for all, requests and responses.</summary>
    public FlowFilter? Filter { get; }

    /// <summary>The regular expression, over the body's bytes viewed as Latin-1 (a non-ASCII character in the spec stands
    /// for its UTF-8 bytes, as in mitmproxy's bytes patterns).</summary>
    public Regex Pattern { get; }

    /// <summary>The file the replacement is read from, or null.</summary>
    public string? ReplacementFile { get; }

    /// <summary>Parses <c>[SEP filter] SEP regex SEP replacement</c> (the first character is the separator), e.g.
    /// <c>|~s ~t html|&lt;title&gt;.*?&lt;/title&gt;|&lt;title&gt;mine&lt;/title&gt;</c>.</summary>
    /// <param name="spec">The spec.</param>
    /// <returns>The rule.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="spec"/> is null.</exception>
    /// <exception cref="FormatException">Wrong number of parts, a filter or regex that does not parse, a bad replacement
    /// or an @file that does not exist; the message says which.</exception>
    public static ModifyBodyRule Parse(string spec)
    {
        var parsed = RuleSpec.Parse(spec);
        var pattern = RuleSpec.ParseRegex(parsed.Subject, RegexOptions.Singleline, bytes: true);
        var file = RuleSpec.FilePath(parsed.Replacement);
        var replacement = file is null ? Template(parsed.Replacement) : "";
        return new ModifyBodyRule(spec, parsed.Filter, pattern, replacement, file);
    }

    /// <summary>The body with every match replaced.</summary>
    /// <exception cref="IOException">The replacement file cannot be read.</exception>
    /// <exception cref="FormatException">The replacement file's content is not a valid template.</exception>
    /// <exception cref="RegexMatchTimeoutException">The regex ran too long.</exception>
    internal async ValueTask<byte[]> ApplyAsync(ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var replacement = ReplacementFile is null
            ? _replacement
            : Template(Encoding.UTF8.GetString(await File.ReadAllBytesAsync(ReplacementFile, cancellationToken)));
        return Encoding.Latin1.GetBytes(Pattern.Replace(Encoding.Latin1.GetString(body.Span), replacement));
    }

    /// <inheritdoc/>
    public override string ToString() => Spec;

    // The replacement's characters become its UTF-8 bytes, one Latin-1 char each, like the body.
    private static string Template(string replacement) =>
        RuleSpec.ToDotNetReplacement(Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(replacement)));
}
