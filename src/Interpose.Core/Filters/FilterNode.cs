using System.Text;

namespace Interpose.Core.Filters;

/// <summary>
/// A node of a parsed filter: an immutable tree of <see cref="FilterNot"/>, <see cref="FilterAnd"/>,
/// <see cref="FilterOr"/> over the leaves <see cref="FilterFlag"/>, <see cref="FilterPattern"/> and
/// <see cref="FilterStatusCode"/>. <see cref="ToString"/> gives filter text that parses back to an equal tree.
/// </summary>
public abstract record FilterNode
{
    private protected FilterNode()
    {
    }

    /// <summary>Whether <paramref name="flow"/> matches this (sub)filter.</summary>
    /// <param name="flow">The flow.</param>
    /// <returns><see langword="true"/> when it matches.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    /// <exception cref="System.Text.RegularExpressions.RegexMatchTimeoutException">A regular expression ran longer
    /// than its match timeout (<see cref="FlowFilterOptions.MatchTimeout"/>).</exception>
    public bool Matches(IFilterableFlow flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        return FilterEvaluator.Evaluate(this, flow);
    }

    /// <summary>The node as filter text, fully parenthesized where precedence needs it.</summary>
    /// <returns>Filter text that parses back to an equal tree.</returns>
    public sealed override string ToString()
    {
        var sb = new StringBuilder();
        Write(sb);
        return sb.ToString();
    }

    /// <summary>Appends the node as filter text.</summary>
    internal abstract void Write(StringBuilder sb);

    /// <summary>How tightly the node's text binds: 3 for atoms and <c>!</c>, 2 for <c>&amp;</c>, 1 for <c>|</c>.</summary>
    internal virtual int Precedence => 3;

    internal void WriteOperand(StringBuilder sb, int parentPrecedence)
    {
        if (Precedence < parentPrecedence)
        {
            sb.Append('(');
            Write(sb);
            sb.Append(')');
        }
        else
        {
            Write(sb);
        }
    }
}
