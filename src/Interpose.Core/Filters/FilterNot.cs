using System.Text;

namespace Interpose.Core.Filters;

/// <summary><c>!x</c>: matches when <see cref="Operand"/> does not.</summary>
public sealed record FilterNot : FilterNode
{
    /// <summary>Creates the negation of <paramref name="operand"/>.</summary>
    /// <param name="operand">The negated filter.</param>
    /// <exception cref="ArgumentNullException"><paramref name="operand"/> is null.</exception>
    public FilterNot(FilterNode operand)
    {
        ArgumentNullException.ThrowIfNull(operand);
        Operand = operand;
    }

    /// <summary>The negated filter.</summary>
    public FilterNode Operand { get; }

    internal override void Write(StringBuilder sb)
    {
        sb.Append('!');
        Operand.WriteOperand(sb, 3);
    }
}
