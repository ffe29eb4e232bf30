using System.Collections.Immutable;
using System.Globalization;

namespace Interpose.Core.Filters;

/// <summary>
/// Recursive descent over <see cref="FilterLexer"/>, with mitmproxy's precedence (pyparsing <c>infixNotation</c> under
/// <c>OneOrMore</c>):
/// <code>
/// sequence := or { or }            juxtaposition: AND, binding loosest ("~q ~d a | ~d b" = ~q &amp; (~d a | ~d b))
/// or       := and { "|" and }
/// and      := not { "&amp;" not }
/// not      := "!" not | primary
/// primary  := "(" sequence ")" | "~" code [ value | digits ] | value        (a bare value is ~u value)
/// </code>
/// </summary>
internal sealed class FilterParser
{
    /// <summary>
    /// The deepest nesting of parentheses and <c>!</c> accepted: 100. Evaluation recurses once per level, so this
    /// bounds stack use for filters that come from UIs and URLs; pyparsing gives up near Python's recursion limit
    /// (1000 frames, several per level), and no hand-written filter comes close.
    /// </summary>
    public const int MaxNestingDepth = 100;

    /// <summary>
    /// The longest expression accepted: 16 KiB characters. mitmproxy has no limit; this one bounds parse work and
    /// regex compilation for filters that arrive over the network (web UI, stored queries) and is far above any filter
    /// a person writes.
    /// </summary>
    public const int MaxExpressionLength = 16 * 1024;

    private readonly FilterLexer _lexer;
    private readonly FlowFilterOptions _options;
    private int _depth;

    private FilterParser(string expression, FlowFilterOptions options)
    {
        _lexer = new FilterLexer(expression);
        _options = options;
    }

    public static FilterNode Parse(string expression, FlowFilterOptions options)
    {
        var parser = new FilterParser(expression, options);
        if (expression.Length > MaxExpressionLength)
        {
            throw parser._lexer.Error(MaxExpressionLength, $"an expression of at most {MaxExpressionLength} characters");
        }

        var lexer = parser._lexer;
        lexer.SkipWhitespace();
        if (lexer.AtEnd)
        {
            throw lexer.Error(lexer.Position, "a filter expression", "The expression is empty.");
        }

        var root = parser.ParseSequence();
        lexer.SkipWhitespace();
        if (!lexer.AtEnd)
        {
            // Only an unmatched ')' stops a top-level sequence early.
            throw lexer.Error(lexer.Position, "an operator or the end of the expression", "This ')' closes nothing.");
        }

        return root;
    }

    private FilterNode ParseSequence()
    {
        var first = ParseOr();
        if (_lexer.AtOperandEnd())
        {
            return first;
        }

        var items = ImmutableArray.CreateBuilder<FilterNode>();
        items.Add(first);
        while (!_lexer.AtOperandEnd())
        {
            items.Add(ParseOr());
        }

        return new FilterAnd(items.ToImmutable());
    }

    private FilterNode ParseOr()
    {
        var first = ParseAnd();
        ImmutableArray<FilterNode>.Builder? items = null;
        while (TryConsumeBinary('|'))
        {
            items ??= ImmutableArray.CreateBuilder<FilterNode>();
            if (items.Count == 0)
            {
                items.Add(first);
            }

            items.Add(ParseAnd());
        }

        return items is null ? first : new FilterOr(items.ToImmutable());
    }

    private FilterNode ParseAnd()
    {
        var first = ParseNot();
        ImmutableArray<FilterNode>.Builder? items = null;
        while (TryConsumeBinary('&'))
        {
            items ??= ImmutableArray.CreateBuilder<FilterNode>();
            if (items.Count == 0)
            {
                items.Add(first);
            }

            items.Add(ParseNot());
        }

        return items is null ? first : new FilterAnd(items.ToImmutable());
    }

    /// <summary>Consumes <paramref name="op"/> where an operator may stand; an operand must follow it.</summary>
    private bool TryConsumeBinary(char op)
    {
        _lexer.SkipWhitespace();
        if (_lexer.AtEnd || _lexer.Current != op)
        {
            return false;
        }

        int at = _lexer.Position;
        _lexer.Position++;
        if (_lexer.AtOperandEnd())
        {
            // NOTE: mitmproxy reads a trailing '&' or '|' as a bare URL regex of that one character ("~q &" is
            // "~q & ~u &"); a dangling operator is far more often a typo, so it is an error here.
            throw _lexer.Error(_lexer.Position, $"an expression after '{op}' (at position {at})");
        }

        return true;
    }

    private FilterNode ParseNot()
    {
        _lexer.SkipWhitespace();
        if (!_lexer.AtEnd && _lexer.Current == '!')
        {
            int at = _lexer.Position;
            _lexer.Position++;
            Enter(at);
            if (_lexer.AtOperandEnd())
            {
                // NOTE: mitmproxy falls back to a bare URL regex "!" here; a lone '!' is an error instead.
                throw _lexer.Error(_lexer.Position, $"an expression after '!' (at position {at})");
            }

            var operand = ParseNot();
            _depth--;
            return new FilterNot(operand);
        }

        return ParsePrimary();
    }

    private FilterNode ParsePrimary()
    {
        _lexer.SkipWhitespace();
        int start = _lexer.Position;
        if (_lexer.AtEnd || _lexer.Current == ')')
        {
            throw _lexer.Error(start, "an expression");
        }

        char c = _lexer.Current;
        if (c == '(')
        {
            _lexer.Position++;
            Enter(start);

            // NOTE: mitmproxy allows only &, | and ! inside parentheses ("(~q ~s)" is an error there); juxtaposition
            // is accepted here as AND, like at the top level. Nothing mitmproxy accepts changes meaning.
            if (_lexer.AtOperandEnd())
            {
                throw _lexer.Error(_lexer.Position, "an expression inside the parentheses");
            }

            var inner = ParseSequence();
            _lexer.SkipWhitespace();
            if (_lexer.AtEnd)
            {
                throw _lexer.Error(_lexer.Position, $"')' to close the '(' at position {start}");
            }

            _lexer.Position++; // ')': a sequence stops only at the end or at ')'.
            _depth--;
            return inner;
        }

        if (c == '~')
        {
            return ParseOperator();
        }

        var value = _lexer.TryReadValue()!;
        if (value is "&" or "|")
        {
            // NOTE: mitmproxy reads a lone '&' or '|' where an operand belongs as a URL regex ("~q & & x" is
            // "~q & ~u & ~u x"); here it is an error. Values that merely start with them ("&x") are still values.
            throw _lexer.Error(start, "an expression", $"'{value}' is an operator and needs an operand on each side.");
        }

        return MakePattern(FilterOperatorInfo.Of(FilterOperator.Url), value, start);
    }

    private FilterNode ParseOperator()
    {
        int opStart = _lexer.Position;
        var info = _lexer.ReadOperator();
        switch (info.Arity)
        {
            case FilterArity.None:
                return new FilterFlag(info.Operator);

            case FilterArity.Number:
            {
                _lexer.SkipWhitespace();
                int at = _lexer.Position;
                string? digits = _lexer.TryReadDigits();
                if (digits is null)
                {
                    throw _lexer.Error(at, $"a status code (decimal digits) after '~{info.Code}' (at position {opStart})");
                }

                if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int code))
                {
                    // NOTE: Python's int() takes any length; a code past int's range can never match anyway.
                    throw _lexer.Error(at, "a status code of at most 10 digits that fits in 32 bits");
                }

                return new FilterStatusCode(code);
            }

            default:
            {
                _lexer.SkipWhitespace();
                int at = _lexer.Position;
                string? value = _lexer.TryReadValue();
                if (value is null)
                {
                    throw _lexer.Error(at, $"a regular expression after '~{info.Code}' (at position {opStart})");
                }

                return MakePattern(info, value, at);
            }
        }
    }

    private FilterPattern MakePattern(FilterOperatorInfo info, string pattern, int position)
    {
        try
        {
            return new FilterPattern(info.Operator, pattern, FilterRegex.Compile(info, pattern, _options));
        }
        catch (ArgumentException e)
        {
            throw _lexer.Error(position, "a valid regular expression", e.Message);
        }
    }

    private void Enter(int position)
    {
        if (++_depth > MaxNestingDepth)
        {
            throw _lexer.Error(position, $"at most {MaxNestingDepth} levels of parentheses and '!'");
        }
    }
}
