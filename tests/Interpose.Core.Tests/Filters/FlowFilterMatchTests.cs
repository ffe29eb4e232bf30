using System.Text.RegularExpressions;
using Interpose.Core.Filters;

namespace Interpose.Core.Tests.Filters;

public sealed class FlowFilterMatchTests
{
    /// <summary>Expression × flow × expected, with mitmproxy's meaning (flows in <see cref="TestFlow.All"/>).</summary>
    public static TheoryData<string, string, bool> Table => new()
    {
        // Flags.
        { "~all", "tcp", true },
        { "~http", "get", true },
        { "~http", "tcp", false },
        { "~tcp", "tcp", true },
        { "~tcp", "get", false },
        { "~udp", "tcp", false },
        { "~dns", "get", false },
        { "~websocket", "ws", true },
        { "~websocket", "get", false },
        { "~q", "pending", true },
        { "~q", "get", false },
        { "~q", "tcp", false },
        { "~s", "get", true },
        { "~s", "pending", false },
        { "~s", "tcp", false },
        { "~e", "error", true },
        { "~e", "get", false },
        { "~marked", "post", true },
        { "~marked", "get", false },
        { "~marker default", "post", true },
        { "~marker X", "post", false },
        { "~replay", "replayed", true },
        { "~replay", "get", false },
        { "~replayq", "replayed", true },
        { "~replays", "replayed", false },
        { "~replays", "proxied", true },

        // ~a: mitmproxy's built-in types, case-sensitive.
        { "~a", "js", true },
        { "~a", "get", false },
        { "~a", "uppercss", false },

        // ~c: decimal digits, equality, only with a response.
        { "~c 200", "get", true },
        { "~c 201", "get", false },
        { "~c 0200", "get", true },
        { "~c 200", "pending", false },
        { "~c 200|~c 404", "uppercss", true },
        { "~c 200 ~u app", "js", true },

        // ~m: case-insensitive search.
        { "~m GET", "get", true },
        { "~m get", "get", true },
        { "~m GET", "pending", true },
        { "~m ^POST$", "get", false },
        { "~m ^POST$", "post", true },
        { "~m GET", "tcp", false },

        // ~d: request host or the Host header's host (without its port).
        { @"~d example\.com", "get", true },
        { "~d EXAMPLE", "get", true },
        { @"~d example\.org", "get", false },
        { "~d virtual", "proxied", true },
        { @"~d ^10\.0\.0\.1$", "proxied", true },
        { "~d 8080", "proxied", false },
        { "~d example", "tcp", false },

        // ~u and bare values.
        { "~u index", "get", true },
        { @"index\.html", "get", true },
        { "INDEX", "get", true },
        { "~u ^https://", "post", true },
        { "~u ^https://", "get", false },
        { "example", "tcp", false },
        { "~u :8443/v1", "post", true },
        { @"~u com/index\.html\?q=1$", "get", true },

        // Headers: "name: value\r\n" lines in wire order and case, MULTILINE.
        { "~h \"^Server: nginx\"", "get", true },
        { "~h \"^server: NGINX\\r$\"", "get", true },
        { "~hq Server", "get", false },
        { "~hs Server", "get", true },
        { "~hq user-agent", "get", true },
        { "~hs Server", "pending", false },
        { "~h Upgrade", "tcp", false },
        { @"~h ""Accept: \*/\*""", "get", true },
        { "~h 'X-Token: s3cr3t'", "post", true },

        // Content types: request first, then response.
        { "~t json", "post", true },
        { "~tq json", "post", true },
        { "~ts json", "post", true },
        { "~ts html", "get", true },
        { "~tq html", "get", false },
        { "~t html", "get", true },
        { "~t css", "uppercss", true },
        { "~t json", "tcp", false },

        // Bodies: raw bytes, UTF-8 patterns, DOTALL; messages of WebSocket and TCP flows.
        { "~b Hello", "get", true },
        { "~bq Hello", "get", false },
        { "~bs hello", "get", true },
        { "~bq café", "post", true },
        { @"~bq caf\xc3\xa9", "post", true },
        { "~b \"Hello.World\"", "get", true },
        { "~bs '\"id\":7'", "post", true },
        { "~bs \"\\\"id\\\":7\"", "post", true },
        { "~b hello", "ws", true },
        { "~bq welcome", "ws", false },
        { "~bs welcome", "ws", true },
        { "~b PING", "tcp", true },
        { "~bs PING", "tcp", false },
        { "~bq ping", "tcp", true },
        { "~b nothing-like-this", "get", false },

        // Comment (MULTILINE), addresses.
        { "~comment second", "post", true },
        { "~comment \"^second line$\"", "post", true },
        { "~comment x", "get", false },
        { @"~src 127\.0\.0\.1", "get", true },
        { "~src :5000$", "get", true },
        { "~src ^::1:", "post", true },
        { "~src 127", "tcp", false },
        { "~dst :5432", "tcp", true },
        { "~dst example", "pending", false },

        // Negation, precedence, juxtaposition.
        { "!~s", "pending", true },
        { "! ~c 200", "get", false },
        { "!~c 201 !~c 202", "get", true },
        { "!!~s", "get", true },
        { "~q | ~c 200", "get", true },
        { "~q & ~c 200", "get", false },
        { "~s ~d example ~m post", "post", true },
        { "~s ~d example ~m post", "get", false },
        { "~s ~d example | ~d down", "error", false },
        { "~s & ~d example | ~d down", "error", true },
        { "!~q & ~s", "get", true },
        { "!(~q | ~e)", "get", true },
        { "!(~q | ~e)", "error", false },
        { "(~c 200 | ~c 201) & ~m post", "post", true },
        { "(~q ~e)", "error", true },
        { "~q & !~e", "error", false },
        { "~e | ~q & ~m post", "pending", false },

        // Quoting.
        { @"~u ""index\.html\?q=1""", "get", true },
        { "\"~d\"", "get", false },
        { "\"exam\"ple", "get", true },
        { "'exam' 'zzz'", "get", false },

        // Python spellings.
        { "~u \"(?P<w>ex)ample\"", "get", true },
        { "~bs \"(?P<c>l)(?P=c)o\"", "get", true },
        { @"~u index\.html\?q=1\Z", "get", true },
        { @"~u ""exampl\_?e""", "get", true },
        { @"~u ""[\_x]?example""", "get", true },
        { "~u \"ex{,3}ample\"", "get", true },
        { "~u \"exx{,3}ample\"", "get", true },
        { "~u \"e[{,3}]xample\"", "get", false },

        // .NET's case-insensitive matching reaches beyond ASCII: k matches the Kelvin sign (not s the long s).
        { "~u kelvin", "kelvin", true },
        { "~u /sign", "kelvin", false },

        // Extension: ')' may follow a keyword directly (mitmproxy requires a space).
        { "!(~q | ~e)", "pending", false },
        { "(~s)", "get", true },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Expression_matches_flow_as_mitmproxy_does(string expression, string flow, bool expected)
    {
        var filter = FlowFilter.Parse(expression);
        Assert.Equal(expected, filter.Matches(TestFlow.All[flow]));
    }

    [Theory]
    [MemberData(nameof(Table))]
    public void ToString_parses_back_to_the_same_tree_with_the_same_answer(string expression, string flow, bool expected)
    {
        var filter = FlowFilter.Parse(expression);
        string text = filter.Root.ToString();
        var again = FlowFilter.Parse(text);
        Assert.Equal(filter.Root, again.Root);
        Assert.Equal(expected, again.Matches(TestFlow.All[flow]));
    }

    [Theory]
    [InlineData("~m get", "get", false)]
    [InlineData("~m GET", "get", true)]
    [InlineData("~u INDEX", "get", false)]
    [InlineData("~d EXAMPLE", "get", false)]
    [InlineData("~hs server", "get", false)]
    [InlineData("~hs Server", "get", true)]
    [InlineData("~bs hello", "get", false)]
    public void CaseSensitive_option_turns_case_folding_off(string expression, string flow, bool expected)
    {
        var filter = FlowFilter.Parse(expression, new FlowFilterOptions { CaseSensitive = true });
        Assert.Equal(expected, filter.Matches(TestFlow.All[flow]));
    }

    [Theory]
    [InlineData("~q ~d x | ~d y", "~q & (~d x | ~d y)")]
    [InlineData("~q & ~d x | ~d y", "(~q & ~d x) | ~d y")]
    [InlineData("!~q & ~s", "!~q & ~s")]
    [InlineData("!(~q & ~s)", "!(~q & ~s)")]
    [InlineData("~a | ~b x & ~c 1", "~a | (~b x & ~c 1)")]
    [InlineData("a&b", "~u a&b")]
    [InlineData("~d a&~d b", "~d a& & ~d b")]
    [InlineData("~u a|b", "~u a|b")]
    [InlineData("~u a | b", "~u a | ~u b")]
    [InlineData("!foo", "!~u foo")]
    [InlineData("~u 'foo ~u bar' ~u voing", "~u \"foo ~u bar\" & ~u voing")]
    [InlineData("'it''s'", "~u it & ~u s")]
    [InlineData("~u 'foobar\\\"\\''", "~u \"foobar\\\"'\"")]
    [InlineData("~u \"foo \\'bar\"", "~u \"foo 'bar\"")]
    [InlineData("~c 200abc", "~c 200 & ~u abc")]
    [InlineData("( ~q )", "~q")]
    [InlineData("((~q))", "~q")]
    [InlineData("~q (~s | ~e) | ~a", "~q & ((~s | ~e) | ~a)")]
    [InlineData("~q |~s", "~q | ~s")]
    [InlineData("~d !x", "~d !x")]
    [InlineData("~s шгн", "~s & ~u шгн")]
    [InlineData("~q\t~s\n~e", "~q & ~s & ~e")]
    [InlineData("~u get(Info|Routers)", "~u get & ~u Info|Routers")]
    [InlineData("~q ~b test", "~q & ~b test")]
    [InlineData("!(~q & ~t \"text/html\")", "!(~q & ~t text/html)")]
    [InlineData("~u \"/api/v[12]/\" | ~m \"^(PUT|DELETE)$\"", "~u /api/v[12]/ | ~m \"^(PUT|DELETE)$\"")]
    public void Precedence_and_lexing_follow_mitmproxy(string expression, string canonical)
    {
        Assert.Equal(canonical, FlowFilter.Parse(expression).Root.ToString());
    }

    [Fact]
    public void Quoted_values_keep_regex_escapes_and_unescape_only_quotes()
    {
        // mitmproxy drops these backslashes (its issue #6688); here the regex arrives as written.
        var p = Assert.IsType<FilterPattern>(FlowFilter.Parse(@"~u ""\.sign\(""").Root);
        Assert.Equal(@"\.sign\(", p.Pattern);
        Assert.Matches(p.Regex, "a.sign(x)");
        Assert.DoesNotMatch(p.Regex, "assign(x)");

        var q = Assert.IsType<FilterPattern>(FlowFilter.Parse(@"~u 'a\\b\'c'").Root);
        Assert.Equal(@"a\\b'c", q.Pattern);
        Assert.Matches(q.Regex, @"a\b'c");
    }

    [Fact]
    public void Bare_value_keeps_backslashes()
    {
        var p = Assert.IsType<FilterPattern>(FlowFilter.Parse(@"~d example\.com").Root);
        Assert.Equal(@"example\.com", p.Pattern);
        Assert.Equal(FilterOperator.Domain, p.Operator);
    }

    [Fact]
    public void Juxtaposition_and_operators_build_flat_nodes()
    {
        var and = Assert.IsType<FilterAnd>(FlowFilter.Parse("~q ~s ~e").Root);
        Assert.Equal(3, and.Operands.Length);
        var or = Assert.IsType<FilterOr>(FlowFilter.Parse("~q | ~s | ~e").Root);
        Assert.Equal(3, or.Operands.Length);
        Assert.Equal(new FilterStatusCode(404), FlowFilter.Parse("~c 404").Root);
    }

    [Fact]
    public void A_catastrophic_regex_is_stopped_by_the_match_timeout()
    {
        var filter = FlowFilter.Parse(@"~bs ""^(\w+\s?)*$""", new FlowFilterOptions { MatchTimeout = TimeSpan.FromMilliseconds(20) });
        var flow = TestFlow.All["get"] with { ResponseBody = TestFlow.Utf8(new string('a', 64) + "!") };
        Assert.Throws<RegexMatchTimeoutException>(() => filter.Matches(flow));
        Assert.Equal(TimeSpan.FromMilliseconds(20), Assert.IsType<FilterPattern>(filter.Root).Regex.MatchTimeout);
    }

    [Fact]
    public void Default_match_timeout_is_applied_to_every_regex()
    {
        var filter = FlowFilter.Parse("~u a | ~h b | ~b c");
        foreach (var node in Assert.IsType<FilterOr>(filter.Root).Operands)
        {
            Assert.Equal(FlowFilterOptions.DefaultMatchTimeout, Assert.IsType<FilterPattern>(node).Regex.MatchTimeout);
        }
    }

    [Fact]
    public void Matching_headers_and_bodies_does_not_allocate()
    {
        var filter = FlowFilter.Parse("~h nomatch | ~b nomatch | ~t nomatch | ~d nomatch | ~m nomatch | ~u nomatch | ~c 999 | ~a");
        var flow = TestFlow.All["post"];
        Assert.False(filter.Matches(flow));
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            filter.Matches(flow);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Every_operator_in_the_table_parses()
    {
        foreach (var info in FilterOperatorInfo.All)
        {
            string text = info.Arity switch
            {
                FilterArity.None => "~" + info.Code,
                FilterArity.Number => "~" + info.Code + " 200",
                _ => "~" + info.Code + " x",
            };
            var root = FlowFilter.Parse(text).Root;
            var op = root switch
            {
                FilterFlag f => f.Operator,
                FilterPattern p => p.Operator,
                FilterStatusCode => FilterOperator.StatusCode,
                _ => throw new InvalidOperationException(text),
            };
            Assert.Equal(info.Operator, op);
        }
    }
}
