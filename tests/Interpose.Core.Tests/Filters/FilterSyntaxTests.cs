using Interpose.Core.Filters;

namespace Interpose.Core.Tests.Filters;

public sealed class FilterSyntaxTests
{
    /// <summary>Expression, 0-based position of the error, and a fragment of what was expected.</summary>
    public static TheoryData<string, int, string> Errors => new()
    {
        { "", 0, "a filter expression" },
        { "   ", 3, "a filter expression" },
        { "~b", 2, "a regular expression after '~b'" },
        { "~h [", 3, "a valid regular expression" },
        { "~u \"(?P<x\"", 3, "a valid regular expression" },
        { "(~q", 3, "')' to close the '(' at position 0" },
        { "~q)", 2, "an operator or the end" },
        { "~q(", 2, "whitespace or the end after '~q'" },
        { "(~q(", 3, "whitespace or the end after '~q'" },
        { "~q&~s", 2, "whitespace or the end after '~q'" },
        { "~d\"a\"", 2, "whitespace or the end after '~d'" },
        { "~x", 0, "a filter operator" },
        { "~c200", 2, "whitespace between '~c' and its value" },
        { "~u2024", 2, "whitespace between '~u' and its value" },
        { "~D x", 0, "a filter operator" },
        { "~qq", 0, "a filter operator" },
        { "~", 0, "a filter operator" },
        { "~c", 2, "a status code" },
        { "~c abc", 3, "a status code" },
        { "~c -1", 3, "a status code" },
        { "~c 99999999999", 3, "fits in 32 bits" },
        { "~u \"abc", 7, "a closing \" for the string opened at position 3" },
        { "'abc", 4, "a closing '" },
        { "~q &", 4, "an expression after '&'" },
        { "~q |", 4, "an expression after '|'" },
        { "~q | )", 5, "an expression after '|'" },
        { "!", 1, "an expression after '!'" },
        { "~q !", 4, "an expression after '!'" },
        { "()", 1, "an expression inside the parentheses" },
        { "~q )", 3, "an operator or the end" },
        { "& ~q", 0, "an expression" },
        { "~q & | ~s", 5, "an expression" },
        { "~u (", 3, "a regular expression after '~u'" },
        { "~u ~q", 3, "a regular expression after '~u'" },
        { "~s (~q | ~e", 11, "')' to close the '(' at position 3" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public void Syntax_error_reports_position_and_expectation(string expression, int position, string expected)
    {
        var e = Assert.Throws<FilterSyntaxException>(() => FlowFilter.Parse(expression));
        Assert.Equal(position, e.Position);
        Assert.Contains(expected, e.Expected + " " + e.Message, StringComparison.Ordinal);
        Assert.Equal(expression, e.Expression);
    }

    [Fact]
    public void Message_points_at_the_position_with_a_caret()
    {
        var e = Assert.Throws<FilterSyntaxException>(() => FlowFilter.Parse("~d x & (~q"));
        string[] lines = e.Message.Split('\n');
        Assert.Equal("Invalid filter expression: expected ')' to close the '(' at position 7 at the end.", lines[0]);
        Assert.Equal("  ~d x & (~q", lines[1]);
        Assert.Equal(new string(' ', 2 + 10) + "^", lines[2]);

        var mid = Assert.Throws<FilterSyntaxException>(() => FlowFilter.Parse("~q| ~s"));
        Assert.StartsWith("Invalid filter expression: expected whitespace or the end after '~q' at position 2.", mid.Message, StringComparison.Ordinal);
        Assert.Equal("    ^", mid.Message.Split('\n')[2]);
    }

    [Fact]
    public void Regex_errors_carry_the_engine_detail()
    {
        var e = Assert.Throws<FilterSyntaxException>(() => FlowFilter.Parse("~s & ~h \"a(b\""));
        Assert.Equal(8, e.Position);
        Assert.Contains("a(b", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nesting_deeper_than_the_limit_is_an_error_and_the_limit_itself_parses()
    {
        string ok = new string('(', FlowFilter.MaxNestingDepth) + "~q" + new string(')', FlowFilter.MaxNestingDepth);
        Assert.IsType<FilterFlag>(FlowFilter.Parse(ok).Root);

        string deep = new string('(', FlowFilter.MaxNestingDepth + 1) + "~q" + new string(')', FlowFilter.MaxNestingDepth + 1);
        var e = Assert.Throws<FilterSyntaxException>(() => FlowFilter.Parse(deep));
        Assert.Equal(FlowFilter.MaxNestingDepth, e.Position);

        string nots = new string('!', FlowFilter.MaxNestingDepth + 1) + "~q";
        Assert.Equal(FlowFilter.MaxNestingDepth, Assert.Throws<FilterSyntaxException>(() => FlowFilter.Parse(nots)).Position);
    }

    [Fact]
    public void Expressions_longer_than_the_limit_are_refused()
    {
        string longest = "~u " + new string('a', FlowFilter.MaxExpressionLength - 3);
        Assert.IsType<FilterPattern>(FlowFilter.Parse(longest).Root);
        var e = Assert.Throws<FilterSyntaxException>(() => FlowFilter.Parse(longest + "a"));
        Assert.Equal(FlowFilter.MaxExpressionLength, e.Position);
    }

    [Fact]
    public void Null_and_bad_options_are_argument_errors()
    {
        Assert.Throws<ArgumentNullException>(() => FlowFilter.Parse(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => FlowFilter.Parse("~q", new FlowFilterOptions { MatchTimeout = TimeSpan.Zero }));
    }
}
