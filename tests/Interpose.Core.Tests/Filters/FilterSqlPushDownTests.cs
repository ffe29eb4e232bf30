using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Interpose.Core.Filters;

namespace Interpose.Core.Tests.Filters;

public sealed class FilterSqlPushDownTests
{
    /// <summary>Expressions for the superset property: every pushable leaf, alone, negated and combined.</summary>
    public static readonly string[] Expressions =
    [
        "~c 200", "!~c 200", "~c 404 | ~c 201", "~q", "!~q", "~s", "!~s", "~all", "!~all",
        "~m GET", "!~m GET", "~m ^get$", "~m post", "!~m post", "~m ^P", "~m T$", "!~m T$", "~m delete",
        "~u index", "!~u index", "~u ^https://", "!~u ^https://", "~u kelvin", "!~u kelvin", "~u /sign", "!~u /sign",
        "~u com/$", "!~u \"1$\"", @"~u index\.html\?q=1", "~u 100%_done", "!~u 100%_done", "~u \"a b\"",
        "~d example", "!~d example", "~d virtual", "!~d virtual", "~d ^10\\.0", "!~d ^10\\.0", "~d \"com$\"", "!~d \"com$\"",
        "~d EXAMPLE.com", "!~d Example\\.COM",
        "~q ~d example", "!(~q ~d example)", "~s & !~c 200", "!(~s & !~c 200)", "~c 200 | ~b nothing",
        "!(~c 200 | ~b nothing)", "~m get & ~h Host", "!(~m get & ~h Host)", "~b x | ~m get", "!(~b x | ~m get)",
        "~u ex.mple", "!~u ex.mple", "~tcp | ~c 404", "!(~tcp | ~c 404)", "~e | ~q", "!~e & !~q",
        "~d example ~u \\.com", "!~d example | ~c 204", "~u \"(?i)KELVIN\"", "!~m \"(GET|PUT)\"", "~u K", "!~u K",

        // Patterns that match the empty string: a flow without the field (a tunnel has no URL) does not match them.
        "~u \"\"", "\"\"", "~u ^", "~m \"\"", "!~u \"^$\"", "!~u $", "!~d \"\"", "~d ^", "!~m ^",
    ];

    public static TheoryData<string> ExpressionData => new(Expressions);

    private static object? Column(TestFlow flow, string column) => column switch
    {
        "method" => flow.Method,
        "host" => flow.Host,
        "url" => flow.Url,
        "status_code" => flow.StatusCode,
        _ => throw new ArgumentOutOfRangeException(nameof(column), column, null),
    };

    [Theory]
    [MemberData(nameof(ExpressionData))]
    public void Sql_part_never_excludes_a_flow_the_filter_matches(string expression)
    {
        foreach (var caseSensitive in new[] { false, true })
        {
            var filter = FlowFilter.Parse(expression, new FlowFilterOptions { CaseSensitive = caseSensitive });
            var (where, residual) = FilterSqlPushDown.Split(filter.Root, FilterSqlColumns.Default);
            foreach (var (name, flow) in TestFlow.All)
            {
                bool full = filter.Matches(flow);
                bool sql = where.Evaluate(c => Column(flow, c));
                if (full)
                {
                    Assert.True(sql, $"'{expression}' (case-sensitive: {caseSensitive}) matches {name} but its SQL excludes it");
                }

                // The plan as a whole (SQL, then the residual in memory) answers exactly what the filter does.
                bool planned = sql && (residual is null || residual.Matches(flow));
                Assert.True(full == planned, $"'{expression}' on {name}: filter {full}, plan {planned}");
            }
        }
    }

    [Theory]
    [InlineData("~c 404", "status_code IS $f0", true)]
    [InlineData("!~c 404", "NOT (status_code IS $f0)", true)]
    [InlineData("~m get", @"IFNULL(method, '') LIKE $f0 ESCAPE '\'", true)]
    [InlineData("~m post", @"IFNULL(method, '') LIKE $f0 ESCAPE '\'", true)]
    [InlineData("~m lock", @"IFNULL(method, '') LIKE $f0 ESCAPE '\'", false)]
    [InlineData("~m t$", @"IFNULL(method, '') LIKE $f0 ESCAPE '\'", false)]
    [InlineData("~b x", "1", false)]
    [InlineData("!~q", "1", false)]
    [InlineData("!~s", "status_code IS NULL", false)]
    [InlineData("~q", "status_code IS NULL", false)]
    [InlineData("~d example", @"(IFNULL(host, '') LIKE $f0 ESCAPE '\' OR IFNULL(url, '') LIKE $f1 ESCAPE '\')", false)]
    [InlineData("~c 200 | ~c 201", "(status_code IS $f0 OR status_code IS $f1)", true)]
    [InlineData("~c 200 | ~b x", "1", false)]
    [InlineData("~all", "1", true)]
    public void Where_clause_shapes(string expression, string where, bool exact)
    {
        var plan = FilterSqlPushDown.Plan(FlowFilter.Parse(expression).Root);
        Assert.Equal(where, plan.WhereClause);
        Assert.Equal(exact, plan.IsExact);
    }

    [Fact]
    public void Literals_are_escaped_for_like_and_widened_where_dotnet_folds_beyond_ascii()
    {
        var plan = FilterSqlPushDown.Plan(FlowFilter.Parse(@"~u 100%_done\.txt").Root);
        Assert.Equal(@"%100\%\_done.txt%", Assert.Single(plan.Parameters).Value);

        var post = FilterSqlPushDown.Plan(FlowFilter.Parse("~m ^post").Root);
        Assert.Equal("post%", Assert.Single(post.Parameters).Value);
        Assert.True(post.IsExact);

        // k also matches U+212A KELVIN SIGN in .NET, which LIKE would not: it widens to '_' in the upper bound.
        var lockMethod = FilterSqlPushDown.Plan(FlowFilter.Parse("~m ^lock$").Root);
        Assert.Equal("loc_%", Assert.Single(lockMethod.Parameters).Value);
        Assert.False(lockMethod.IsExact);

        // Case-sensitive: LIKE only bounds from above, nothing is widened, the residual stays.
        var cs = FilterSqlPushDown.Plan(FlowFilter.Parse("~m ^lock", new FlowFilterOptions { CaseSensitive = true }).Root);
        Assert.Equal("lock%", Assert.Single(cs.Parameters).Value);
        Assert.False(cs.IsExact);
    }

    [Fact]
    public void Exact_conjuncts_leave_the_residual_and_inexact_ones_stay()
    {
        var plan = FilterSqlPushDown.Plan(FlowFilter.Parse("~c 200 ~m get ~b needle ~d example").Root);
        Assert.Equal(@"(status_code IS $f0 AND IFNULL(method, '') LIKE $f1 ESCAPE '\' AND (IFNULL(host, '') LIKE $f2 ESCAPE '\' OR IFNULL(url, '') LIKE $f3 ESCAPE '\'))", plan.WhereClause);
        Assert.Equal([200, "%get%", "%example%", "%example%"], plan.Parameters.Select(p => p.Value));
        Assert.Equal("~b needle & ~d example", plan.Residual?.ToString());
    }

    [Fact]
    public void Columns_can_be_renamed_or_left_out()
    {
        var columns = new FilterSqlColumns { Method = "f.verb", Host = null, ParameterPrefix = "@q" };
        var plan = FilterSqlPushDown.Plan(FlowFilter.Parse("~m get & ~d example").Root, columns);
        Assert.Equal(@"IFNULL(f.verb, '') LIKE @q0 ESCAPE '\'", plan.WhereClause);
        Assert.Equal("~d example", plan.Residual?.ToString());

        Assert.Throws<ArgumentException>(() => FilterSqlPushDown.Plan(new FilterFlag(FilterOperator.All), new FilterSqlColumns { Url = "url; DROP TABLE flows" }));
        Assert.Throws<ArgumentException>(() => FilterSqlPushDown.Plan(new FilterFlag(FilterOperator.All), new FilterSqlColumns { ParameterPrefix = "f" }));
    }

    [Fact]
    public void The_letters_widened_for_like_are_exactly_those_dotnet_folds_to_non_ascii()
    {
        var found = new StringBuilder();
        for (char letter = 'A'; letter <= 'z'; letter++)
        {
            if (!char.IsAsciiLetter(letter))
            {
                continue;
            }

            var re = new Regex(Regex.Escape(letter.ToString()), RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
            for (int c = 0x80; c <= 0xFFFF; c++)
            {
                if (!char.IsSurrogate((char)c) && re.IsMatch(((char)c).ToString()))
                {
                    found.Append(letter);
                    break;
                }
            }
        }

        Assert.Equal(FilterSqlPushDown.LettersWithNonAsciiCaseForms, found.ToString());
    }

    /// <summary>Runs every pushed-down WHERE clause in real SQLite (the sqlite3 command) over the test flows and checks
    /// that it selects exactly what the in-memory model of the condition selects, so the superset property proven above
    /// holds for SQLite itself (LIKE's case rules, NULL handling, escaping).</summary>
    [SqliteCliFact]
    public async Task Sqlite_agrees_with_the_condition_model()
    {
        var flows = TestFlow.All.ToArray();
        var script = new StringBuilder();
        script.AppendLine("CREATE TABLE flows(id INTEGER PRIMARY KEY, method TEXT, host TEXT, url TEXT, status_code INTEGER);");
        for (int i = 0; i < flows.Length; i++)
        {
            var f = flows[i].Value;
            script.Append(CultureInfo.InvariantCulture, $"INSERT INTO flows VALUES({i}, {Literal(f.Method)}, {Literal(f.Host)}, {Literal(f.Url)}, {Literal(f.StatusCode)});\n");
        }

        var expected = new List<string>();
        foreach (var caseSensitive in new[] { false, true })
        {
            foreach (var expression in Expressions)
            {
                var filter = FlowFilter.Parse(expression, new FlowFilterOptions { CaseSensitive = caseSensitive });
                var plan = FilterSqlPushDown.Plan(filter.Root);
                string where = plan.WhereClause;
                foreach (var p in plan.Parameters.Reverse())
                {
                    where = where.Replace(p.Name, Literal(p.Value), StringComparison.Ordinal);
                }

                script.Append(CultureInfo.InvariantCulture, $"SELECT '#' || IFNULL((SELECT group_concat(id, ',') FROM (SELECT id FROM flows WHERE {where} ORDER BY id)), '');\n");
                var (model, _) = FilterSqlPushDown.Split(filter.Root, FilterSqlColumns.Default);
                var ids = Enumerable.Range(0, flows.Length).Where(i => model.Evaluate(c => Column(flows[i].Value, c)));
                expected.Add("#" + string.Join(',', ids) + "  <- " + expression + (caseSensitive ? " (case-sensitive)" : string.Empty));
            }
        }

        var actual = await RunSqliteAsync(script.ToString());
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i], actual[i] + expected[i][expected[i].IndexOf("  <- ", StringComparison.Ordinal)..]);
        }
    }

    private static string Literal(object? value) => value switch
    {
        null => "NULL",
        int i => i.ToString(CultureInfo.InvariantCulture),
        string s => "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'",
        _ => throw new ArgumentException(value.GetType().Name),
    };

    private static async Task<List<string>> RunSqliteAsync(string script)
    {
        var psi = new ProcessStartInfo("sqlite3", ":memory:")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
        };
        using var process = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.StandardInput.WriteAsync(script);
        process.StandardInput.Close();
        await process.WaitForExitAsync(timeout.Token);
        Assert.Equal(string.Empty, await stderr);
        Assert.Equal(0, process.ExitCode);
        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }
}

/// <summary>A fact that needs the sqlite3 command on PATH; skipped, visibly, where it is missing.</summary>
internal sealed class SqliteCliFactAttribute : FactAttribute
{
    public SqliteCliFactAttribute()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        if (!path.Split(Path.PathSeparator).Any(d => File.Exists(Path.Combine(d, "sqlite3"))))
        {
            Skip = "the sqlite3 command is not installed";
        }
    }
}
