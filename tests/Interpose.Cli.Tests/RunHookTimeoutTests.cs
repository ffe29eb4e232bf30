namespace Interpose.Cli.Tests;

/// <summary><c>interpose run --hook-timeout</c> (config key <c>hook_timeout</c>): seconds above 0, or off.</summary>
public sealed class RunHookTimeoutTests
{
    [Theory]
    [InlineData("90", 90_000)]
    [InlineData("0.5", 500)]
    [InlineData("86400", 86_400_000)]
    public void Seconds_parse_with_fractions(string text, double milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), RunCommand.ParseHookTimeout(text));

    [Fact]
    public void Off_turns_the_bound_off() => Assert.Equal(Timeout.InfiniteTimeSpan, RunCommand.ParseHookTimeout("OFF"));

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("soon")]
    [InlineData("90s")]
    [InlineData("86401")]
    public void Anything_else_is_a_usage_error_naming_the_flag(string text) =>
        Assert.StartsWith("--hook-timeout: ", Assert.Throws<CliUsageException>(() => RunCommand.ParseHookTimeout(text)).Message, StringComparison.Ordinal);
}
