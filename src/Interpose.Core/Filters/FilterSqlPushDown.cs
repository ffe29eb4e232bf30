using System.Collections.Immutable;
using System.Text;

namespace Interpose.Core.Filters;

/// <summary>
/// Splits a filter into a SQLite WHERE fragment over indexed columns and a residual filter to run in memory.
/// The rule that makes it safe: the WHERE fragment never excludes a flow that the whole filter matches.
/// </summary>
/// <remarks>
/// Every node gets two SQL conditions: an upper bound (true whenever the node matches) and a lower bound (true only
/// when the node matches). AND and OR combine bounds of the same kind; NOT swaps them (the negation of a lower bound
/// is an upper bound of the negation), so negated filters push down correctly. Leaves:
/// <list type="bullet">
/// <item><c>~c N</c>: <c>status_code IS N</c>, exact.</item>
/// <item><c>~q</c>: upper bound <c>status_code IS NULL</c>; <c>~s</c>: lower bound <c>status_code IS NOT NULL</c>.</item>
/// <item><c>~m</c>, <c>~u</c> with a literal pattern (optionally <c>^</c>/<c>$</c>-anchored ASCII text): LIKE. SQLite's
/// LIKE folds ASCII only, while .NET's case-insensitive matching also lets <c>k</c> match the Kelvin sign; in the
/// upper bound that letter becomes <c>_</c>. A <c>$</c> anchor is dropped from the upper
/// bound (it also matches before a final newline).</item>
/// <item><c>~d</c> with a literal: upper bound <c>host LIKE %x% OR url LIKE %x%</c> (the Host header's host is in the
/// URL), lower bound <c>host LIKE</c> with the anchors.</item>
/// <item>Everything else: upper bound true, lower bound false.</item>
/// </list>
/// Case-sensitive filters (<see cref="FlowFilterOptions.CaseSensitive"/>) keep their upper bounds (LIKE is looser) but
/// lose the lower ones. Top-level AND operands whose bounds coincide are left out of the residual.
/// </remarks>
public static class FilterSqlPushDown
{
    /// <summary>
    /// The ASCII letters that .NET's invariant case-insensitive matching equates with a non-ASCII character: K with
    /// U+212A KELVIN SIGN. A test enumerates every char to keep this list complete.
    /// </summary>
    internal const string LettersWithNonAsciiCaseForms = "Kk";

    /// <summary>Splits <paramref name="filter"/> for a store with <paramref name="columns"/>.</summary>
    /// <param name="filter">The parsed filter.</param>
    /// <param name="columns">The store's columns; <see cref="FilterSqlColumns.Default"/> when null.</param>
    /// <returns>The WHERE fragment with its parameters, and the residual.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="filter"/> is null.</exception>
    /// <exception cref="ArgumentException">A column or the parameter prefix is not a plain (optionally dotted) SQL
    /// identifier.</exception>
    public static FilterSqlPlan Plan(FilterNode filter, FilterSqlColumns? columns = null)
    {
        ArgumentNullException.ThrowIfNull(filter);
        columns ??= FilterSqlColumns.Default;
        Validate(columns);
        var (where, residual) = Split(filter, columns);
        var sb = new StringBuilder();
        var parameters = new List<FilterSqlParameter>();
        where.Render(sb, parameters, columns.ParameterPrefix);
        return new FilterSqlPlan(sb.ToString(), parameters, residual);
    }

    /// <summary>The WHERE condition as a tree (tests evaluate it without SQLite) and the residual.</summary>
    internal static (SqlCondition Where, FilterNode? Residual) Split(FilterNode filter, FilterSqlColumns columns)
    {
        if (filter is FilterAnd and)
        {
            var where = SqlCondition.True;
            var rest = ImmutableArray.CreateBuilder<FilterNode>();
            foreach (var operand in and.Operands)
            {
                var b = Bounds(operand, columns);
                where = SqlCondition.And(where, b.Upper);
                if (!b.Exact)
                {
                    rest.Add(operand);
                }
            }

            FilterNode? residual = rest.Count switch
            {
                0 => null,
                1 => rest[0],
                _ => new FilterAnd(rest.ToImmutable()),
            };
            return (where, residual);
        }

        var bounds = Bounds(filter, columns);
        return (bounds.Upper, bounds.Exact ? null : filter);
    }

    /// <param name="Upper">True whenever the node matches.</param>
    /// <param name="Lower">True only when the node matches.</param>
    /// <param name="Exact">Upper and Lower are the same condition: the node is answered by SQL alone.</param>
    private readonly record struct SqlBounds(SqlCondition Upper, SqlCondition Lower, bool Exact)
    {
        public static readonly SqlBounds Unknown = new(SqlCondition.True, SqlCondition.False, false);

        public static SqlBounds ExactAs(SqlCondition c) => new(c, c, true);
    }

    private static SqlBounds Bounds(FilterNode node, FilterSqlColumns columns)
    {
        switch (node)
        {
            case FilterNot not:
            {
                var b = Bounds(not.Operand, columns);
                return new SqlBounds(SqlCondition.Not(b.Lower), SqlCondition.Not(b.Upper), b.Exact);
            }

            case FilterAnd and:
                return Combine(and.Operands, columns, SqlCondition.And, SqlCondition.True);
            case FilterOr or:
                return Combine(or.Operands, columns, SqlCondition.Or, SqlCondition.False);
            case FilterStatusCode code when columns.StatusCode is { } status:
                return SqlBounds.ExactAs(new SqlCondition.IntegerIs(status, code.Code));
            case FilterFlag { Operator: FilterOperator.All }:
                return SqlBounds.ExactAs(SqlCondition.True);
            case FilterFlag { Operator: FilterOperator.Request } when columns.StatusCode is { } status:
                // ~q ⇒ no response ⇒ no status code. The converse fails for TCP flows.
                return new SqlBounds(new SqlCondition.IsNull(status), SqlCondition.False, false);
            case FilterFlag { Operator: FilterOperator.Response } when columns.StatusCode is { } status:
                // A status code ⇒ an HTTP response ⇒ ~s. The converse fails for DNS responses.
                return new SqlBounds(SqlCondition.True, SqlCondition.Not(new SqlCondition.IsNull(status)), false);
            // A literal that matches the empty string ("", ^, $) matches any value of its field, but not a flow without
            // that field (a tunnel has no URL); SQL reads a missing field as '' and cannot tell the two apart.
            case FilterPattern p when RegexLiteral.TryParse(p.Pattern, out var literal) && literal.Text.Length > 0:
                return PatternBounds(p, literal, columns);
            default:
                return SqlBounds.Unknown;
        }
    }

    private static SqlBounds Combine(ImmutableArray<FilterNode> operands, FilterSqlColumns columns, Func<SqlCondition, SqlCondition, SqlCondition> op, SqlCondition identity)
    {
        SqlCondition upper = identity, lower = identity;
        bool exact = true;
        foreach (var o in operands)
        {
            var b = Bounds(o, columns);
            upper = op(upper, b.Upper);
            lower = op(lower, b.Lower);
            exact &= b.Exact;
        }

        return new SqlBounds(upper, lower, exact);
    }

    private static SqlBounds PatternBounds(FilterPattern p, RegexLiteral literal, FilterSqlColumns columns)
    {
        bool ignoreCase = !p.IsCaseSensitive;
        string upperText = EscapeLike(literal.Text, widenCaseForms: ignoreCase);
        string lowerText = EscapeLike(literal.Text, widenCaseForms: false);
        bool widened = !string.Equals(upperText, lowerText, StringComparison.Ordinal);
        string upperPattern = (literal.AtStart ? string.Empty : "%") + upperText + "%";
        string lowerPattern = (literal.AtStart ? string.Empty : "%") + lowerText + (literal.AtEnd ? string.Empty : "%");

        switch (p.Operator)
        {
            case FilterOperator.Method when columns.Method is { } column:
                return Text(column);
            case FilterOperator.Url when columns.Url is { } column:
                return Text(column);
            case FilterOperator.Domain when columns.Host is { } host && columns.Url is { } url:
            {
                // The regex may match the request host or the Host header's host; the latter sits inside the URL but
                // not at its start, so the upper bound ignores the anchors.
                string anywhere = "%" + upperText + "%";
                var upper = SqlCondition.Or(new SqlCondition.Like(host, anywhere), new SqlCondition.Like(url, anywhere));
                var lower = ignoreCase ? new SqlCondition.Like(host, lowerPattern) : SqlCondition.False;
                return new SqlBounds(upper, lower, false);
            }

            default:
                return SqlBounds.Unknown;
        }

        SqlBounds Text(string column)
        {
            var upper = new SqlCondition.Like(column, upperPattern);
            if (!ignoreCase)
            {
                // LIKE ignores ASCII case, so it only bounds a case-sensitive regex from above.
                return new SqlBounds(upper, SqlCondition.False, false);
            }

            bool exact = !widened && !literal.AtEnd;
            return new SqlBounds(upper, exact ? upper : new SqlCondition.Like(column, lowerPattern), exact);
        }
    }

    private static string EscapeLike(string text, bool widenCaseForms)
    {
        var sb = new StringBuilder(text.Length + 4);
        foreach (char c in text)
        {
            if (widenCaseForms && LettersWithNonAsciiCaseForms.Contains(c, StringComparison.Ordinal))
            {
                sb.Append('_');
                continue;
            }

            if (c is '%' or '_' or '\\')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        return sb.ToString();
    }

    private static void Validate(FilterSqlColumns columns)
    {
        Check(columns.Method, nameof(columns.Method));
        Check(columns.Host, nameof(columns.Host));
        Check(columns.Url, nameof(columns.Url));
        Check(columns.StatusCode, nameof(columns.StatusCode));
        string prefix = columns.ParameterPrefix ?? string.Empty;
        if (prefix.Length < 2 || prefix[0] is not ('$' or '@' or ':') || !IsIdentifier(prefix.AsSpan(1), dotted: false))
        {
            throw new ArgumentException($"The parameter prefix '{prefix}' must be $, @ or : followed by an identifier.", nameof(columns));
        }

        static void Check(string? column, string what)
        {
            if (column is not null && !IsIdentifier(column, dotted: true))
            {
                throw new ArgumentException($"The {what} column '{column}' is not a plain SQL identifier.", nameof(columns));
            }
        }
    }

    private static bool IsIdentifier(ReadOnlySpan<char> s, bool dotted)
    {
        if (s.IsEmpty || !(char.IsAsciiLetter(s[0]) || s[0] == '_'))
        {
            return false;
        }

        for (int i = 1; i < s.Length; i++)
        {
            char c = s[i];
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_' || (dotted && c == '.' && s[i - 1] != '.' && i + 1 < s.Length)))
            {
                return false;
            }
        }

        return true;
    }
}
