namespace Interpose.Core.Filters;

/// <summary>One parameter of a pushed-down WHERE fragment.</summary>
/// <param name="Name">The name as it appears in the SQL, prefix included (<c>$f0</c>).</param>
/// <param name="Value">A <see cref="string"/> (a LIKE pattern, escaped with <c>\</c>) or an <see cref="int"/>.</param>
public readonly record struct FilterSqlParameter(string Name, object Value);
