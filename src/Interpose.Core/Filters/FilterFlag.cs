using System.Text;

namespace Interpose.Core.Filters;

/// <summary>An operator that takes no argument: <c>~q</c>, <c>~s</c>, <c>~e</c>, <c>~a</c>, <c>~http</c>, ...</summary>
public sealed record FilterFlag : FilterNode
{
    /// <summary>Creates the leaf for <paramref name="op"/>.</summary>
    /// <param name="op">An operator whose <see cref="FilterOperatorInfo.Arity"/> is <see cref="FilterArity.None"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="op"/> takes an argument.</exception>
    /// <exception cref="KeyNotFoundException"><paramref name="op"/> is not a defined operator.</exception>
    public FilterFlag(FilterOperator op)
    {
        if (FilterOperatorInfo.Of(op).Arity != FilterArity.None)
        {
            throw new ArgumentException($"~{FilterOperatorInfo.Of(op).Code} takes an argument.", nameof(op));
        }

        Operator = op;
    }

    /// <summary>The operator.</summary>
    public FilterOperator Operator { get; }

    internal override void Write(StringBuilder sb) => sb.Append('~').Append(FilterOperatorInfo.Of(Operator).Code);
}
