using System.Text;
using System.Text.RegularExpressions;
using Interpose.Core.Filters;

namespace Interpose.Proxy.Rules;

/// <summary>
/// mitmproxy's rule spec string (mitmproxy/utils/spec.py): the first character is the separator, then
/// <c>[filter]SEP subject SEP replacement</c>. With two parts the filter is "every flow"; the string is split at most
/// twice, so the replacement may contain the separator.
/// </summary>
internal readonly record struct RuleSpec(FlowFilter? Filter, string Subject, string Replacement)
{
    /// <summary>
    /// How long a rule's own regular expression (URL pattern, body pattern) may run against one subject: the filter
    /// language's default (<see cref="FlowFilterOptions.DefaultMatchTimeout"/>), for the same reason.
    /// </summary>
    public static readonly TimeSpan MatchTimeout = FlowFilterOptions.DefaultMatchTimeout;

    /// <summary>Splits <paramref name="spec"/> into filter, subject and replacement.</summary>
    /// <exception cref="FormatException">The spec is empty, has the wrong number of parts, or its filter does not parse.</exception>
    public static RuleSpec Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var parts = Split(spec, 3);
        return parts.Length switch
        {
            2 => new RuleSpec(null, parts[0], parts[1]),
            3 => new RuleSpec(ParseFilter(parts[0]), parts[1], parts[2]),
            _ => throw new FormatException("invalid number of parameters (2 or 3 are expected, separated by the spec's first character, e.g. |~d example\\.com|subject|replacement)"),
        };
    }

    /// <summary>The parts after the separator (the first character), split at most <paramref name="maxParts"/> - 1 times.</summary>
    /// <exception cref="FormatException">The spec has no separator and nothing after it.</exception>
    public static string[] Split(string spec, int maxParts)
    {
        if (spec.Length < 2)
        {
            throw new FormatException("empty spec: the first character is the separator, e.g. |~d example\\.com|...");
        }

        return spec[1..].Split(spec[0], maxParts);
    }

    /// <summary>Parses a flow filter, naming it in the error.</summary>
    /// <exception cref="FormatException">The filter does not parse.</exception>
    public static FlowFilter ParseFilter(string text)
    {
        try
        {
            return FlowFilter.Parse(text);
        }
        catch (FilterSyntaxException ex)
        {
            throw new FormatException($"invalid filter pattern '{text}': {ex.Message}", ex);
        }
    }

    /// <summary>Compiles a rule's regular expression (Python spellings translated, case-sensitive as Python's <c>re</c>).</summary>
    /// <exception cref="FormatException">It does not compile.</exception>
    public static Regex ParseRegex(string pattern, RegexOptions extra = RegexOptions.None, bool bytes = false)
    {
        try
        {
            var translated = FilterRegex.TranslatePython(pattern);
            return new Regex(bytes ? FilterRegex.ToLatin1View(translated) : translated, RegexOptions.CultureInvariant | extra, MatchTimeout);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"invalid regular expression '{pattern}': {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Turns a Python <c>re.sub</c> replacement template into a .NET one: <c>\1</c> and <c>\g&lt;name&gt;</c> are group
    /// references, <c>\n</c>, <c>\r</c>, <c>\t</c> and <c>\\</c> are escapes, and a <c>$</c> is literal.
    /// </summary>
    /// <exception cref="FormatException">A <c>\g&lt;</c> is not closed, or a backslash ends the template.</exception>
    public static string ToDotNetReplacement(string template)
    {
        var sb = new StringBuilder(template.Length + 8);
        for (var i = 0; i < template.Length; i++)
        {
            var c = template[i];
            if (c == '$')
            {
                sb.Append("$$");
                continue;
            }

            if (c != '\\')
            {
                sb.Append(c);
                continue;
            }

            if (i + 1 >= template.Length)
            {
                throw new FormatException($"bad replacement '{template}': a backslash at the end");
            }

            var next = template[++i];
            if (char.IsAsciiDigit(next))
            {
                // Python reads one or two digits as a group number.
                var end = i + 1 < template.Length && char.IsAsciiDigit(template[i + 1]) ? i + 2 : i + 1;
                sb.Append("${").Append(template.AsSpan(i, end - i)).Append('}');
                i = end - 1;
            }
            else if (next == 'g' && i + 1 < template.Length && template[i + 1] == '<')
            {
                var close = template.IndexOf('>', i + 2);
                if (close < 0)
                {
                    throw new FormatException($"bad replacement '{template}': \\g< without >");
                }

                sb.Append("${").Append(template.AsSpan(i + 2, close - i - 2)).Append('}');
                i = close;
            }
            else
            {
                sb.Append(next switch
                {
                    'n' => "\n",
                    'r' => "\r",
                    't' => "\t",
                    '\\' => "\\",
                    _ => "\\" + next,
                });
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// A value or, when it starts with <c>@</c>, the path of a file holding it (mitmproxy reads the file at each use, so
    /// edits apply at once). The file must exist when the rule is made.
    /// </summary>
    /// <exception cref="FormatException">The file does not exist.</exception>
    public static string? FilePath(string replacement)
    {
        if (!replacement.StartsWith('@'))
        {
            return null;
        }

        var path = ExpandHome(replacement[1..]);
        return File.Exists(path) ? Path.GetFullPath(path) : throw new FormatException($"invalid file path: {replacement[1..]} (no such file)");
    }

    /// <summary>A leading <c>~/</c> is the user's home, as Python's expanduser.</summary>
    public static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal)
            ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + path[1..]
            : path;
}
