using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Proxy.Rules;

namespace Interpose.Proxy.Tests.Rules;

/// <summary>What ~u sees on a live exchange (rules, scripts, intercept) is what it sees on the flow recorded from it.</summary>
public sealed class ExchangeFilterViewTests
{
    [Theory]
    [InlineData("OPTIONS", "http", 80, "*")]
    [InlineData("GET", "https", 443, "/a?b=1")]
    [InlineData("GET", "http", 8080, "/")]
    public void The_live_url_is_the_recorded_flows_url(string method, string scheme, int port, string path)
    {
        var request = new HttpRequest(method, scheme, "example.test", port, path, System.Net.HttpVersion.Version11, new HttpHeaders());
        var recorded = new FlowRequest { Method = method, Scheme = scheme, Host = "example.test", Port = port, Path = path, HttpVersion = "HTTP/1.1", Headers = new HttpHeaders() };

        Assert.Equal(recorded.Url, ExchangeFilterView.PrettyUrl(request));
    }
}
