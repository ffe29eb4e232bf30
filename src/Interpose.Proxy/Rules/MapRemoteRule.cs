using System.Text.RegularExpressions;
using Interpose.Core.Filters;

namespace Interpose.Proxy.Rules;

/// <summary>
/// mitmproxy's <c>--map-remote [|filter]|url-regex|replacement</c>: every match of the regex in the request's URL is
/// replaced (Python's <c>re.sub</c>: <c>\1</c> and <c>\g&lt;name&gt;</c> refer to groups) before the origin is
/// contacted, so scheme, host, port and path can all change; when the host changes, the Host header follows.
/// </summary>
public sealed class MapRemoteRule
{
    private MapRemoteRule(string spec, FlowFilter? filter, Regex pattern, string replacement)
    {
        Spec = spec;
        Filter = filter;
        Pattern = pattern;
        Replacement = replacement;
    }

    /// <summary>The spec the rule was parsed from.</summary>
    public string Spec { get; }

    /// <summary>The requests the rule applies to; null for all.</summary>
    public FlowFilter? Filter { get; }

    /// <summary>The regular expression searched in the URL (case-sensitive, as Python's <c>re</c>).</summary>
    public Regex Pattern { get; }

    /// <summary>The replacement as a .NET template (translated from Python's).</summary>
    public string Replacement { get; }

    /// <summary>Parses <c>[SEP filter] SEP url-regex SEP replacement</c> (the first character is the separator), e.g.
    /// <c>|example\.org/images/|localhost:8000/img/</c>.</summary>
    /// <param name="spec">The spec.</param>
    /// <returns>The rule.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="spec"/> is null.</exception>
    /// <exception cref="FormatException">Wrong number of parts, a filter or regex that does not parse, or a bad
    /// replacement; the message says which.</exception>
    public static MapRemoteRule Parse(string spec)
    {
        var parsed = RuleSpec.Parse(spec);
        return new MapRemoteRule(spec, parsed.Filter, RuleSpec.ParseRegex(parsed.Subject), RuleSpec.ToDotNetReplacement(parsed.Replacement));
    }

    /// <summary>The URL after the rule (every match replaced).</summary>
    /// <exception cref="RegexMatchTimeoutException">The regex ran too long.</exception>
    internal string Apply(string url) => Pattern.Replace(url, Replacement);

    /// <inheritdoc/>
    public override string ToString() => Spec;
}
