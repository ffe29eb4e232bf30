namespace Interpose.Core.Filters;

/// <summary>
/// A filter split for a SQL store: <see cref="WhereClause"/> selects a superset of the matching flows from indexed
/// columns, and <see cref="Residual"/> (when not null) must be evaluated in memory on the rows it returns.
/// </summary>
/// <param name="WhereClause">A SQLite boolean expression (<c>1</c> when nothing could be pushed down); put it in
/// parentheses when combining it with other conditions.</param>
/// <param name="Parameters">The parameters <see cref="WhereClause"/> names, to bind by name.</param>
/// <param name="Residual">What is left to check in memory; null when the WHERE clause is exact.</param>
public sealed record FilterSqlPlan(string WhereClause, IReadOnlyList<FilterSqlParameter> Parameters, FilterNode? Residual)
{
    /// <summary>Whether the WHERE clause alone answers the filter.</summary>
    public bool IsExact => Residual is null;
}
