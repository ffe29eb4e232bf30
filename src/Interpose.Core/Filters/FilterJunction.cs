using System.Collections.Immutable;
using System.Text;

namespace Interpose.Core.Filters;

/// <summary>What <see cref="FilterAnd"/> and <see cref="FilterOr"/> share: two or more operands in order, joined by one operator.</summary>
public abstract record FilterJunction : FilterNode
{
    /// <summary>Creates the node over two or more operands.</summary>
    /// <param name="operands">The operands, in order.</param>
    /// <exception cref="ArgumentException">Fewer than two operands, or a null one.</exception>
    private protected FilterJunction(ImmutableArray<FilterNode> operands)
    {
        if (operands.IsDefault || operands.Length < 2 || operands.Any(o => o is null))
        {
            throw new ArgumentException("Two or more non-null operands are required.", nameof(operands));
        }

        Operands = operands;
    }

    /// <summary>The operands, in order (two or more).</summary>
    public ImmutableArray<FilterNode> Operands { get; }

    /// <summary>The operator between operands as written: " &amp; " or " | ".</summary>
    private protected abstract string Separator { get; }

    /// <summary>Structural equality: the same kind of node over the same operands in the same order.</summary>
    /// <param name="other">The other node.</param>
    /// <returns><see langword="true"/> when equal.</returns>
    public virtual bool Equals(FilterJunction? other) =>
        other is not null && EqualityContract == other.EqualityContract && Operands.AsSpan().SequenceEqual(other.Operands.AsSpan());

    /// <summary>A hash over the operands.</summary>
    /// <returns>The hash.</returns>
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(EqualityContract);
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
                sb.Append(Separator);
            }

            // Every nested & or | is parenthesized, so the tree's shape survives a round trip and reads unambiguously.
            Operands[i].WriteOperand(sb, 3);
        }
    }
}
