using System.Net;
using Interpose.Proxy;

namespace Interpose.Cli.Tests;

/// <summary><c>interpose run</c>'s access flags: proxy users, open-proxy refusal, client networks, CONNECT ports.</summary>
public sealed class RunAccessOptionsTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    private string Home => _temp.File("home");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Listening_on_all_interfaces_without_users_exits_2_naming_the_way_out()
    {
        var run = await CliRun.RunAsync(Home, "run", "--listen", "0.0.0.0:0");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--allow-open-proxy", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("--proxy-auth", run.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--proxy-auth", "secret-without-colon", "--proxy-auth", true)]
    [InlineData("--allow-client", "10.0.0.0/33", "--allow-client", false)]
    [InlineData("--connect-ports", "443,0", "--connect-ports", false)]
    public async Task Bad_values_exit_2_naming_the_flag_without_echoing_secrets(string flag, string value, string expected, bool secret)
    {
        var run = await CliRun.RunAsync(Home, "run", flag, value);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(expected, run.Stderr, StringComparison.Ordinal);
        if (secret)
        {
            Assert.DoesNotContain(value, run.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_unknown_connection_strategy_exits_2_naming_the_choices()
    {
        var run = await CliRun.RunAsync(Home, "run", "--connection-strategy", "sometimes");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("eager", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("lazy", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Flags_fill_the_options()
    {
        var file = _temp.File("users");
        File.WriteAllText(file, "# team\nbob:pw\n");
        var options = new ProxyOptions();

        RunCommand.ApplyAccessOptions(options, ["alice:a:b"], new FileInfo(file), ["10.0.0.0/8", "::1/128"], ["443, 8443", "22"]);

        Assert.Equal(["alice", "bob"], options.Authentication.Users.Select(u => u.UserName));
        Assert.Equal("a:b", options.Authentication.Users[0].Password);
        Assert.Equal([IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("::1/128")], options.AllowedClients);
        Assert.Equal([22, 443, 8443], options.AllowedConnectPorts.Order());
    }
}
