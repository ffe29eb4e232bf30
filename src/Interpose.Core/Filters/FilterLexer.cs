using System.Text;

namespace Interpose.Core.Filters;

/// <summary>
/// Reads the filter language's tokens from a string on demand: the parser asks for what may come next at its current
/// point (an operator keyword, a value, digits, punctuation), because what a character means depends on where it
/// stands, as in mitmproxy's pyparsing grammar: <c>&amp;</c> is an operator between operands and part of a value
/// inside one (<c>~d a&amp;b</c> is one regex).
/// </summary>
internal sealed class FilterLexer
{
    public FilterLexer(string text)
    {
        Text = text;
    }

    public string Text { get; }

    public int Position { get; set; }

    public bool AtEnd => Position >= Text.Length;

    public char Current => Text[Position];

    /// <summary>pyparsing's default whitespace, which is what separates tokens in mitmproxy's grammar.</summary>
    public static bool IsWhitespace(char c) => c is ' ' or '\t' or '\n' or '\r';

    /// <summary>The characters a bare value cannot contain (mitmproxy: <c>CharsNotIn("()~'\"" + whitespace)</c>).</summary>
    public static bool EndsBareValue(char c) => IsWhitespace(c) || c is '(' or ')' or '~' or '\'' or '"';

    /// <summary>pyparsing's <c>printables</c>: an operator keyword must not be followed by one of them (<c>WordEnd</c>).</summary>
    private static bool IsPrintableAscii(char c) => c is >= '!' and <= '~';

    public void SkipWhitespace()
    {
        while (!AtEnd && IsWhitespace(Current))
        {
            Position++;
        }
    }

    /// <summary>Whether, after whitespace, the input is at its end or at a <c>)</c>: no operand can start here.</summary>
    public bool AtOperandEnd()
    {
        SkipWhitespace();
        return AtEnd || Current == ')';
    }

    /// <summary>Reads <c>~code</c> at the current <c>~</c>. The keyword runs to the first character that is not
    /// printable ASCII or is <c>)</c>, so <c>~q&amp;~s</c> and <c>~d"x"</c> are errors, as in mitmproxy.</summary>
    public FilterOperatorInfo ReadOperator()
    {
        int start = Position;
        int end = start + 1;

        // NOTE: mitmproxy also refuses ')' right after a keyword ("!(~q | ~e)" must be written "!(~q | ~e )"). Here ')'
        // ends a keyword too: mitmproxy rejects every such expression, so accepting them changes no valid filter.
        while (end < Text.Length && IsPrintableAscii(Text[end]) && Text[end] != ')')
        {
            end++;
        }

        ReadOnlySpan<char> run = Text.AsSpan(start + 1, end - start - 1);
        if (FilterOperatorInfo.TryGet(run, out var info))
        {
            Position = end;
            return info;
        }

        // The longest known code the run starts with, to say "whitespace after ~q" for "~q)" rather than "unknown".
        FilterOperatorInfo? prefix = null;
        foreach (var candidate in FilterOperatorInfo.All)
        {
            if (run.StartsWith(candidate.Code, StringComparison.Ordinal) && (prefix is null || candidate.Code.Length > prefix.Code.Length))
            {
                prefix = candidate;
            }
        }

        if (prefix is not null && !char.IsAsciiLetterOrDigit(run[prefix.Code.Length]))
        {
            throw Error(start + 1 + prefix.Code.Length, $"whitespace or the end after '~{prefix.Code}'");
        }

        // No code holds a digit: "~c200" is "~c 200" without its space (as mitmproxy, the code must be followed by one).
        if (prefix is { Arity: not FilterArity.None } && char.IsAsciiDigit(run[prefix.Code.Length]))
        {
            throw Error(start + 1 + prefix.Code.Length, $"whitespace between '~{prefix.Code}' and its value", $"Write '~{prefix.Code} {run[prefix.Code.Length..]}'.");
        }

        throw Error(start, "a filter operator (such as ~d, ~u, ~q)", $"'~{run}' is not one.");
    }

    /// <summary>Reads a value at the current position: a quoted string or a bare run. Returns null, reading nothing,
    /// when none starts here (end, <c>(</c>, <c>)</c> or <c>~</c>).</summary>
    public string? TryReadValue()
    {
        if (AtEnd)
        {
            return null;
        }

        char c = Current;
        if (c is '"' or '\'')
        {
            return ReadQuoted(c);
        }

        if (EndsBareValue(c))
        {
            return null;
        }

        int start = Position;
        while (!AtEnd && !EndsBareValue(Current))
        {
            Position++;
        }

        return Text[start..Position];
    }

    /// <summary>Reads ASCII decimal digits (pyparsing's <c>Word(nums)</c>); null when there are none.</summary>
    public string? TryReadDigits()
    {
        int start = Position;
        while (!AtEnd && char.IsAsciiDigit(Current))
        {
            Position++;
        }

        return Position > start ? Text[start..Position] : null;
    }

    public FilterSyntaxException Error(int position, string expected, string? detail = null) =>
        new(Text, position, expected, detail);

    /// <summary>
    /// A quoted value. <c>\"</c> and <c>\'</c> stand for the quote; any other backslash pair is kept as written, so
    /// regex escapes such as <c>\.</c>, <c>\(</c> and <c>\\</c> reach the regex engine intact.
    /// </summary>
    /// <remarks>
    /// NOTE: mitmproxy (pyparsing's QuotedString with escChar) drops every backslash, so <c>"\.sign\("</c> becomes
    /// <c>.sign(</c> and fails to compile (mitmproxy issue #6688, open). Keeping regex escapes is the behaviour its
    /// proposed fix (PR #8373) describes; docs/filters.md lists it as a deviation.
    /// </remarks>
    private string ReadQuoted(char quote)
    {
        int start = Position;
        var sb = new StringBuilder();
        int i = start + 1;
        while (i < Text.Length)
        {
            char c = Text[i];
            if (c == quote)
            {
                Position = i + 1;
                return sb.ToString();
            }

            if (c == '\\' && i + 1 < Text.Length)
            {
                char next = Text[i + 1];
                if (next is '"' or '\'')
                {
                    sb.Append(next);
                }
                else
                {
                    sb.Append(c).Append(next);
                }

                i += 2;
                continue;
            }

            sb.Append(c);
            i++;
        }

        throw Error(Text.Length, $"a closing {quote} for the string opened at position {start}");
    }
}
