using System.Text;
using System.Text.RegularExpressions;

namespace Interpose.Core.Filters;

/// <summary>
/// An operator with a regular expression: <c>~d example\.com</c>, <c>~h "^Accept: .*json"</c>, or a bare value (a
/// <see cref="FilterOperator.Url"/> pattern). The regex is compiled once, when the filter is parsed.
/// </summary>
public sealed record FilterPattern : FilterNode
{
    internal FilterPattern(FilterOperator op, string pattern, Regex regex)
    {
        Operator = op;
        Pattern = pattern;
        Regex = regex;
    }

    /// <summary>The operator.</summary>
    public FilterOperator Operator { get; }

    /// <summary>The regular expression as written in the filter (quotes removed, <c>\"</c> and <c>\'</c> unescaped).</summary>
    public string Pattern { get; }

    /// <summary>The compiled expression the evaluator runs (Python-only syntax translated; for bytes operators the
    /// pattern's non-ASCII characters are rewritten as their UTF-8 bytes viewed as Latin-1).</summary>
    public Regex Regex { get; }

    /// <summary>Whether the expression was compiled case-sensitively (<see cref="FlowFilterOptions.CaseSensitive"/>).</summary>
    public bool IsCaseSensitive => (Regex.Options & RegexOptions.IgnoreCase) == 0;

    /// <summary>Equality by operator, pattern and case rule (the compiled object is derived from them).</summary>
    /// <param name="other">The other node.</param>
    /// <returns><see langword="true"/> when equal.</returns>
    public bool Equals(FilterPattern? other) =>
        other is not null && Operator == other.Operator && string.Equals(Pattern, other.Pattern, StringComparison.Ordinal)
        && IsCaseSensitive == other.IsCaseSensitive;

    /// <summary>A hash over operator and pattern.</summary>
    /// <returns>The hash.</returns>
    public override int GetHashCode() => HashCode.Combine(Operator, StringComparer.Ordinal.GetHashCode(Pattern), IsCaseSensitive);

    internal override void Write(StringBuilder sb)
    {
        sb.Append('~').Append(FilterOperatorInfo.Of(Operator).Code).Append(' ');
        AppendValue(sb, Pattern);
    }

    /// <summary>Appends a value bare when the lexer would read it back whole, else in double quotes.</summary>
    internal static void AppendValue(StringBuilder sb, string value)
    {
        bool bare = value.Length > 0;
        foreach (char c in value)
        {
            if (FilterLexer.EndsBareValue(c))
            {
                bare = false;
                break;
            }
        }

        if (bare)
        {
            sb.Append(value);
            return;
        }

        sb.Append('"');
        foreach (char c in value)
        {
            if (c == '"')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        sb.Append('"');
    }
}
