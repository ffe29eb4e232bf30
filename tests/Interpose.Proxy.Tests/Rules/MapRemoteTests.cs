using System.Text;
using Interpose.Proxy.Rules;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Rules;

/// <summary>map-remote in a real proxy over loopback: what the rule did not rewrite reaches the new origin as sent.</summary>
public sealed class MapRemoteTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_remapped_request_keeps_the_path_and_query_as_written_without_normalizing_them()
    {
        await using var first = RawOrigin.Recording();
        await using var second = RawOrigin.Recording();
        var rules = new RulesAddon { MapRemote = [MapRemoteRule.Parse($"|127.0.0.1:{first.Port}|127.0.0.1:{second.Port}")] };
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(rules));

        // Dot segments and escapes the rule never touched: Uri would send "/a/c/~user/A?q=~" and break a signed URL.
        const string Target = "/a/./b/../c/%7Euser/%41?q=%7E";
        await using var stream = await RawClient.ConnectAsync(proxy);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://127.0.0.1:{first.Port}{Target} HTTP/1.1\r\nHost: 127.0.0.1:{first.Port}\r\nConnection: close\r\n\r\n"));
        var answer = (await RawClient.ReadUntilClosedAsync(stream)).Text;

        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.Equal(0, first.AcceptedConnections);
        Assert.StartsWith($"GET {Target} HTTP/1.1\r\n", second.ReceivedText, StringComparison.Ordinal);
        Assert.Contains($"\r\nHost: 127.0.0.1:{second.Port}\r\n", second.ReceivedText, StringComparison.Ordinal);
    }
}
