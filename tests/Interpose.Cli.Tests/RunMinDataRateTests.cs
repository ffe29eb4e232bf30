using Interpose.Proxy;

namespace Interpose.Cli.Tests;

/// <summary><c>interpose run --min-data-rate</c>: BYTES_PER_SECOND[:GRACE_SECONDS], or off.</summary>
public sealed class RunMinDataRateTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("240", 240, 5)]
    [InlineData("240:5", 240, 5)]
    [InlineData("1000:0.5", 1000, 0.5)]
    [InlineData("0.5:0", 0.5, 0)]
    public void A_rate_with_an_optional_grace_period_parses(string text, double bytesPerSecond, double graceSeconds)
    {
        var rate = RunCommand.ParseMinDataRate(text);

        Assert.NotNull(rate);
        Assert.Equal(bytesPerSecond, rate.BytesPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(graceSeconds), rate.GracePeriod);
    }

    [Fact]
    public void Off_turns_the_minimum_off() => Assert.Null(RunCommand.ParseMinDataRate("off"));

    [Fact]
    public void Without_a_grace_period_kestrels_applies() =>
        Assert.Equal(ProxyTimeouts.DefaultMinRequestBodyDataRate.GracePeriod, RunCommand.ParseMinDataRate("100")!.GracePeriod);

    [Theory]
    [InlineData("")]
    [InlineData("fast")]
    [InlineData("0")]
    [InlineData("-240")]
    [InlineData("240:")]
    [InlineData("240:-1")]
    [InlineData("240:5:1")]
    [InlineData("240:soon")]
    [InlineData("1e400")]
    [InlineData("240:1e9")]
    public async Task A_bad_value_exits_2_with_one_line_naming_the_flag(string value)
    {
        var run = await CliRun.RunAsync(_temp.File("home"), "run", "--min-data-rate", value);

        Assert.Equal(2, run.ExitCode);
        var line = Assert.Single(run.StderrLines);
        Assert.Contains("--min-data-rate", line, StringComparison.Ordinal);
    }
}
