using System.Collections.Immutable;
using System.Text;

namespace Interpose.Core.Filters;

/// <summary><c>x | y</c>: matches when any operand matches, evaluated left to right with short-circuit.</summary>
public sealed record FilterOr : FilterNode
{
    /// <summary>Creates the node over two or more operands.</summary>
    /// <param name="operands">The operands, in order.</param>
    /// <exception cref="ArgumentException">Fewer than two operands, or a null one.</exception>
    public FilterOr(ImmutableArray<FilterNode> operands)
    {
        if (operands.IsDefault || operands.Length < 2 || operands.Any(o => o is null))
        {
            throw new ArgumentException("Two or more non-null operands are required.", nameof(operands));
        }

        Operands = operands;
    }

    /// <summary>The operands, in order (two or more).</summary>
    public ImmutableArray<FilterNode> Operands { get; }

    internal override int Precedence => 1;

    /// <summary>Structural equality: the same operands in the same order.</summary>
    /// <param name="other">The other node.</param>
    /// <returns><see langword="true"/> when equal.</returns>
    public bool Equals(FilterOr? other) =>
        other is not null && Operands.AsSpan().SequenceEqual(other.Operands.AsSpan());

    /// <summary>A hash over the operands.</summary>
    /// <returns>The hash.</returns>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var o in Operands)
        {
            h.Add(o);
        }

        return h.ToHashCode();
    }

    internal override void Write(StringBuilder sb)
    {
        for (int i = 0; i < Operands.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(" | ");
            }

            // Every nested & or | is parenthesized, so the tree's shape survives a round trip and reads unambiguously.
            Operands[i].WriteOperand(sb, 3);
        }
    }
}
