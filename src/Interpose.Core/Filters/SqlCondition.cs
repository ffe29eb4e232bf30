using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace Interpose.Core.Filters;

/// <summary>
/// A SQLite WHERE condition built by <see cref="FilterSqlPushDown"/>. Every condition is two-valued (never NULL: text
/// columns are read through <c>IFNULL(col, '')</c> and the status code compared with the NULL-safe <c>IS</c>), so
/// <c>NOT</c> inverts it exactly. <see cref="Evaluate"/> mirrors SQLite's semantics for tests.
/// </summary>
internal abstract record SqlCondition
{
    public static readonly SqlCondition True = new Constant(true);

    public static readonly SqlCondition False = new Constant(false);

    public abstract void Render(StringBuilder sb, List<FilterSqlParameter> parameters, string prefix);

    /// <summary>What SQLite would answer for a row whose columns <paramref name="column"/> gives (string, int or null).</summary>
    public abstract bool Evaluate(Func<string, object?> column);

    public static SqlCondition And(SqlCondition a, SqlCondition b) =>
        a == False || b == False ? False : a == True ? b : b == True ? a : Junction.Of(true, a, b);

    public static SqlCondition Or(SqlCondition a, SqlCondition b) =>
        a == True || b == True ? True : a == False ? b : b == False ? a : Junction.Of(false, a, b);

    public static SqlCondition Not(SqlCondition a) =>
        a == True ? False : a == False ? True : a is Negation n ? n.Operand : new Negation(a);

    private static string AddParameter(List<FilterSqlParameter> parameters, string prefix, object value)
    {
        string name = prefix + parameters.Count.ToString(CultureInfo.InvariantCulture);
        parameters.Add(new FilterSqlParameter(name, value));
        return name;
    }

    private sealed record Constant(bool Value) : SqlCondition
    {
        public override void Render(StringBuilder sb, List<FilterSqlParameter> parameters, string prefix) => sb.Append(Value ? '1' : '0');

        public override bool Evaluate(Func<string, object?> column) => Value;
    }

    /// <summary><c>IFNULL(col, '') LIKE @p ESCAPE '\'</c>: SQLite's LIKE folds ASCII letters only (with the default
    /// <c>case_sensitive_like = OFF</c>); <c>%</c> is any run, <c>_</c> one character.</summary>
    internal sealed record Like(string Column, string Pattern) : SqlCondition
    {
        public override void Render(StringBuilder sb, List<FilterSqlParameter> parameters, string prefix) =>
            sb.Append("IFNULL(").Append(Column).Append(", '') LIKE ").Append(AddParameter(parameters, prefix, Pattern)).Append(" ESCAPE '\\'");

        public override bool Evaluate(Func<string, object?> column)
        {
            string value = column(Column) as string ?? string.Empty;
            return LikeMatch(Runes(Pattern), 0, Runes(value), 0);
        }

        private static Rune[] Runes(string s) => s.EnumerateRunes().ToArray();

        private static bool LikeMatch(Rune[] p, int pi, Rune[] s, int si)
        {
            while (pi < p.Length)
            {
                Rune c = p[pi];
                if (c.Value == '%')
                {
                    for (int k = si; k <= s.Length; k++)
                    {
                        if (LikeMatch(p, pi + 1, s, k))
                        {
                            return true;
                        }
                    }

                    return false;
                }

                if (si >= s.Length)
                {
                    return false;
                }

                if (c.Value == '_')
                {
                    pi++;
                    si++;
                    continue;
                }

                if (c.Value == '\\' && pi + 1 < p.Length)
                {
                    c = p[++pi];
                }

                if (FoldAscii(c) != FoldAscii(s[si]))
                {
                    return false;
                }

                pi++;
                si++;
            }

            return si == s.Length;
        }

        private static int FoldAscii(Rune r) => r.Value is >= 'A' and <= 'Z' ? r.Value + 32 : r.Value;
    }

    /// <summary><c>col IS @p</c> (false for NULL).</summary>
    internal sealed record IntegerIs(string Column, int Value) : SqlCondition
    {
        public override void Render(StringBuilder sb, List<FilterSqlParameter> parameters, string prefix) =>
            sb.Append(Column).Append(" IS ").Append(AddParameter(parameters, prefix, Value));

        public override bool Evaluate(Func<string, object?> column) => column(Column) is int v && v == Value;
    }

    /// <summary><c>col IS NULL</c>.</summary>
    internal sealed record IsNull(string Column) : SqlCondition
    {
        public override void Render(StringBuilder sb, List<FilterSqlParameter> parameters, string prefix) =>
            sb.Append(Column).Append(" IS NULL");

        public override bool Evaluate(Func<string, object?> column) => column(Column) is null;
    }

    private sealed record Negation(SqlCondition Operand) : SqlCondition
    {
        public override void Render(StringBuilder sb, List<FilterSqlParameter> parameters, string prefix)
        {
            sb.Append("NOT (");
            Operand.Render(sb, parameters, prefix);
            sb.Append(')');
        }

        public override bool Evaluate(Func<string, object?> column) => !Operand.Evaluate(column);
    }

    private sealed record Junction(bool IsAnd, ImmutableArray<SqlCondition> Operands) : SqlCondition
    {
        /// <summary>Joins two conditions, flattening nested junctions of the same kind.</summary>
        public static Junction Of(bool isAnd, SqlCondition a, SqlCondition b)
        {
            var items = ImmutableArray.CreateBuilder<SqlCondition>();
            foreach (var c in new[] { a, b })
            {
                if (c is Junction j && j.IsAnd == isAnd)
                {
                    items.AddRange(j.Operands);
                }
                else
                {
                    items.Add(c);
                }
            }

            return new Junction(isAnd, items.ToImmutable());
        }

        public override void Render(StringBuilder sb, List<FilterSqlParameter> parameters, string prefix)
        {
            sb.Append('(');
            for (int i = 0; i < Operands.Length; i++)
            {
                if (i > 0)
                {
                    sb.Append(IsAnd ? " AND " : " OR ");
                }

                Operands[i].Render(sb, parameters, prefix);
            }

            sb.Append(')');
        }

        public override bool Evaluate(Func<string, object?> column) =>
            IsAnd ? Operands.All(o => o.Evaluate(column)) : Operands.Any(o => o.Evaluate(column));
    }
}
