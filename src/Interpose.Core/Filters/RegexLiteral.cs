using System.Text;

namespace Interpose.Core.Filters;

/// <summary>
/// Recognizes the regexes that are plain text: an optional leading <c>^</c>, ASCII characters that are not regex
/// syntax or are escaped punctuation (<c>\.</c>, <c>\/</c>), and an optional trailing <c>$</c>. Only these are pushed
/// down to SQL; anything else stays in memory.
/// </summary>
/// <param name="Text">The literal text.</param>
/// <param name="AtStart">The pattern began with <c>^</c> (start of the subject: no operator pushed down is Multiline).</param>
/// <param name="AtEnd">The pattern ended with <c>$</c> (end of the subject, or before a final newline).</param>
internal readonly record struct RegexLiteral(string Text, bool AtStart, bool AtEnd)
{
    private const string Syntax = "\\.*+?()[]{}|^$#";

    public static bool TryParse(string pattern, out RegexLiteral literal)
    {
        literal = default;
        int start = 0;
        int end = pattern.Length;
        bool atStart = pattern.StartsWith('^');
        if (atStart)
        {
            start = 1;
        }

        // A trailing '$' is an anchor unless escaped: count the backslashes before it.
        bool atEnd = false;
        if (end > start && pattern[end - 1] == '$')
        {
            int backslashes = 0;
            for (int i = end - 2; i >= start && pattern[i] == '\\'; i--)
            {
                backslashes++;
            }

            if (backslashes % 2 == 0)
            {
                atEnd = true;
                end--;
            }
        }

        var sb = new StringBuilder(end - start);
        for (int i = start; i < end; i++)
        {
            char c = pattern[i];
            if (c > '\u007F' || char.IsControl(c))
            {
                return false;
            }

            if (c == '\\')
            {
                // Escaped punctuation is that character; \d, \b, \x41 and the like are syntax.
                if (i + 1 >= end || char.IsAsciiLetterOrDigit(pattern[i + 1]) || pattern[i + 1] > '\u007F' || char.IsWhiteSpace(pattern[i + 1]))
                {
                    return false;
                }

                sb.Append(pattern[++i]);
                continue;
            }

            if (Syntax.Contains(c, StringComparison.Ordinal) || char.IsWhiteSpace(c) && c != ' ')
            {
                return false;
            }

            sb.Append(c);
        }

        literal = new RegexLiteral(sb.ToString(), atStart, atEnd);
        return true;
    }
}
