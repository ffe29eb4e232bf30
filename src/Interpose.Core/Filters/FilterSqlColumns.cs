namespace Interpose.Core.Filters;

/// <summary>
/// The indexed columns a flow store offers to <see cref="FilterSqlPushDown"/>, as SQL expressions (usually column
/// names, optionally table-qualified). A null column is not pushed down. Each column must hold exactly the value of
/// the matching <see cref="IFilterableFlow"/> property, NULL where the property is null.
/// </summary>
public sealed record FilterSqlColumns
{
    /// <summary>The default names: <c>method</c>, <c>host</c>, <c>url</c>, <c>status_code</c>, parameters <c>$f0</c>, ...</summary>
    public static FilterSqlColumns Default { get; } = new();

    /// <summary>The column holding <see cref="IFilterableFlow.Method"/>.</summary>
    public string? Method { get; init; } = "method";

    /// <summary>The column holding <see cref="IFilterableFlow.Host"/>.</summary>
    public string? Host { get; init; } = "host";

    /// <summary>The column holding <see cref="IFilterableFlow.Url"/>.</summary>
    public string? Url { get; init; } = "url";

    /// <summary>The integer column holding <see cref="IFilterableFlow.StatusCode"/>.</summary>
    public string? StatusCode { get; init; } = "status_code";

    /// <summary>The prefix of parameter names (SQLite accepts <c>$</c>, <c>@</c> and <c>:</c>); pick one that the rest
    /// of the query does not use.</summary>
    public string ParameterPrefix { get; init; } = "$f";
}
