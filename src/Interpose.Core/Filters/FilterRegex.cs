using System.Text;
using System.Text.RegularExpressions;

namespace Interpose.Core.Filters;

/// <summary>Turns a filter's Python-style regular expression into a .NET <see cref="Regex"/> with mitmproxy's flags.</summary>
internal static class FilterRegex
{
    /// <summary>Compiles <paramref name="pattern"/> for <paramref name="info"/>'s operator.</summary>
    /// <exception cref="ArgumentException">The pattern is not a valid regular expression.</exception>
    public static Regex Compile(FilterOperatorInfo info, string pattern, FlowFilterOptions options)
    {
        // mitmproxy: case-insensitive unless MITMPROXY_CASE_SENSITIVE_FILTERS=1; MULTILINE/DOTALL per operator.
        var flags = RegexOptions.CultureInvariant | info.ExtraOptions;
        if (!options.CaseSensitive)
        {
            flags |= RegexOptions.IgnoreCase;
        }

        string translated = TranslatePython(pattern);
        if (info.IsBytes)
        {
            translated = ToLatin1View(translated);
        }

        return new Regex(translated, flags, options.MatchTimeout);
    }

    /// <summary>
    /// Rewrites the Python-only spellings users meet: <c>(?P&lt;name&gt;</c> to <c>(?&lt;name&gt;</c>,
    /// <c>(?P=name)</c> to <c>\k&lt;name&gt;</c>, <c>\Z</c> (Python: the very end) to <c>\z</c>, <c>\_</c> (Python
    /// accepts any escaped punctuation; .NET rejects an escaped word character) to <c>_</c>, and the quantifier
    /// <c>{,n}</c> (Python: zero to n; .NET: literal text) to <c>{0,n}</c>.
    /// Everything else is passed through; both dialects agree on the common syntax.
    /// </summary>
    internal static string TranslatePython(string pattern)
    {
        if (!pattern.Contains("(?P", StringComparison.Ordinal) && !pattern.Contains("\\Z", StringComparison.Ordinal)
            && !pattern.Contains("\\_", StringComparison.Ordinal) && !pattern.Contains("{,", StringComparison.Ordinal))
        {
            return pattern;
        }

        var sb = new StringBuilder(pattern.Length);
        bool inClass = false;
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                char next = pattern[i + 1];
                if (next == '_')
                {
                    sb.Append('_');
                }
                else
                {
                    sb.Append(!inClass && next == 'Z' ? "\\z" : pattern.AsSpan(i, 2));
                }

                i++;
                continue;
            }

            if (inClass)
            {
                inClass = c != ']';
                sb.Append(c);
                continue;
            }

            if (c == '[')
            {
                inClass = true;
                sb.Append(c);

                // A ']' right after '[' or '[^' is a literal member, not the end of the class.
                if (i + 1 < pattern.Length && pattern[i + 1] == '^')
                {
                    sb.Append('^');
                    i++;
                }

                if (i + 1 < pattern.Length && pattern[i + 1] == ']')
                {
                    sb.Append(']');
                    i++;
                }

                continue;
            }

            if (c == '{' && IsUpToQuantifier(pattern.AsSpan(i)))
            {
                sb.Append("{0");
                continue;
            }

            if (c == '(' && pattern.AsSpan(i).StartsWith("(?P<", StringComparison.Ordinal))
            {
                sb.Append("(?<");
                i += 3;
                continue;
            }

            if (c == '(' && pattern.AsSpan(i).StartsWith("(?P=", StringComparison.Ordinal))
            {
                int close = pattern.IndexOf(')', i);
                if (close > 0)
                {
                    sb.Append("\\k<").Append(pattern.AsSpan(i + 4, close - i - 4)).Append('>');
                    i = close;
                    continue;
                }
            }

            sb.Append(c);
        }

        return sb.ToString();
    }

    /// <summary>Whether <paramref name="rest"/> starts with Python's <c>{,n}</c>: a brace, a comma, digits, a brace.</summary>
    private static bool IsUpToQuantifier(ReadOnlySpan<char> rest)
    {
        if (rest.Length < 4 || rest[1] != ',')
        {
            return false;
        }

        int j = 2;
        while (j < rest.Length && char.IsAsciiDigit(rest[j]))
        {
            j++;
        }

        return j > 2 && j < rest.Length && rest[j] == '}';
    }

    /// <summary>
    /// mitmproxy matches bytes operators with a UTF-8-encoded pattern over raw bytes. The evaluator views bytes as
    /// Latin-1 text (one char per byte), so the pattern's non-ASCII characters become their UTF-8 bytes as Latin-1
    /// chars: <c>é</c> becomes <c>Ã©</c> and matches the two bytes C3 A9, as in Python.
    /// </summary>
    internal static string ToLatin1View(string pattern)
    {
        foreach (char c in pattern)
        {
            if (c > '\u007F')
            {
                return Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(pattern));
            }
        }

        return pattern;
    }
}
