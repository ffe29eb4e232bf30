using System.Collections.Immutable;

namespace Interpose.Core.Filters;

/// <summary><c>x | y</c>: matches when any operand matches, evaluated left to right with short-circuit.</summary>
public sealed record FilterOr : FilterJunction
{
    /// <summary>Creates the node over two or more operands.</summary>
    /// <param name="operands">The operands, in order.</param>
    /// <exception cref="ArgumentException">Fewer than two operands, or a null one.</exception>
    public FilterOr(ImmutableArray<FilterNode> operands)
        : base(operands)
    {
    }

    internal override int Precedence => 1;

    private protected override string Separator => " | ";
}
