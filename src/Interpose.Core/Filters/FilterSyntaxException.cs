using System.Text;

namespace Interpose.Core.Filters;

/// <summary>
/// A filter expression that does not parse: <see cref="Position"/> is the 0-based character offset of the problem and
/// <see cref="Expected"/> says what the parser wanted there. The message repeats the expression with a caret under
/// the offending character.
/// </summary>
public sealed class FilterSyntaxException : FormatException
{
    /// <summary>Creates an exception for <paramref name="expression"/> failing at <paramref name="position"/>.</summary>
    /// <param name="expression">The whole filter expression.</param>
    /// <param name="position">The 0-based offset of the problem (the length of the expression for "at the end").</param>
    /// <param name="expected">What was expected there, in words (e.g. <c>')'</c>, "a regular expression after ~d").</param>
    /// <param name="detail">An optional extra sentence (e.g. the regex engine's complaint).</param>
    /// <exception cref="ArgumentNullException"><paramref name="expression"/> or <paramref name="expected"/> is null.</exception>
    public FilterSyntaxException(string expression, int position, string expected, string? detail = null)
        : base(Format(expression, position, expected, detail))
    {
        Expression = expression;
        Position = position;
        Expected = expected;
    }

    /// <summary>Creates an exception with only a message (for serializers and tooling; prefer the main constructor).</summary>
    public FilterSyntaxException()
        : this(string.Empty, 0, "a filter expression")
    {
    }

    /// <summary>Creates an exception with only a message (prefer the main constructor).</summary>
    /// <param name="message">The message.</param>
    public FilterSyntaxException(string message)
        : base(message)
    {
        Expression = string.Empty;
        Expected = string.Empty;
    }

    /// <summary>Creates an exception with only a message and a cause (prefer the main constructor).</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public FilterSyntaxException(string message, Exception innerException)
        : base(message, innerException)
    {
        Expression = string.Empty;
        Expected = string.Empty;
    }

    /// <summary>The expression that failed to parse.</summary>
    public string Expression { get; }

    /// <summary>The 0-based character offset of the problem; equal to the expression's length for "at the end".</summary>
    public int Position { get; }

    /// <summary>What the parser expected at <see cref="Position"/>.</summary>
    public string Expected { get; }

    private static string Format(string expression, int position, string expected, string? detail)
    {
        ArgumentNullException.ThrowIfNull(expression);
        ArgumentNullException.ThrowIfNull(expected);
        var where = position >= expression.Length ? "at the end" : $"at position {position}";
        var sb = new StringBuilder();
        sb.Append("Invalid filter expression: expected ").Append(expected).Append(' ').Append(where).Append('.');
        if (detail is not null)
        {
            sb.Append(' ').Append(detail);
        }

        // Control characters would break the caret's alignment: show them as spaces in the echo.
        sb.Append('\n').Append("  ");
        foreach (char c in expression)
        {
            sb.Append(char.IsControl(c) ? ' ' : c);
        }

        sb.Append('\n').Append(' ', 2 + Math.Clamp(position, 0, expression.Length)).Append('^');
        return sb.ToString();
    }
}
