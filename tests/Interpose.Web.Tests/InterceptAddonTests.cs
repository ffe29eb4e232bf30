using System.Net;
using System.Net.Http;
using Interpose.Core.Filters;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Web.Tests;

/// <summary>The intercept addon's bounds: its timeout (fake time), its cap on paused exchanges, and edits refused whole
/// before anything changes.</summary>
public sealed class InterceptAddonTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_paused_request_that_is_not_resumed_in_time_is_answered_504_with_the_reason()
    {
        var clock = new ManualClock();
        var timeout = TimeSpan.FromSeconds(60);
        await using var h = await WebHarness.StartAsync(output, interceptTimeout: timeout, interceptClock: clock);
        h.Intercept.Filter = FlowFilter.Parse("~u timed-out");
        using var client = h.ProxyClient();
        var sending = client.GetAsync(h.Origin.Url("/echo?timed-out=1"));
        await h.WaitForPausedAsync();
        await clock.ArmedAsync(timeout).WaitAsync(TimeSpan.FromSeconds(30));
        clock.Advance(timeout - TimeSpan.FromSeconds(1));
        Assert.Single(h.Intercept.Paused);
        clock.Advance(TimeSpan.FromSeconds(1));

        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("intercepted request was not resumed within 60 s", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Empty(h.Intercept.Paused);
        // The origin's echo route records what reaches it: the timed-out request never does.
        Assert.DoesNotContain(WebHarness.Seen, s => s.Contains("timed-out=1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Past_the_cap_matching_requests_pass_without_pausing()
    {
        await using var h = await WebHarness.StartAsync(output, maxPaused: 1);
        h.Intercept.Filter = FlowFilter.Parse("~q ~u /echo");
        using var client = h.ProxyClient();
        var first = client.PostAsync(h.Origin.Url("/echo?first"), new StringContent("1"));
        var paused = await h.WaitForPausedAsync();

        using (var second = await client.PostAsync(h.Origin.Url("/echo?second"), new StringContent("2")).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal("echo: POST /echo?second |  | 2", await second.Content.ReadAsStringAsync());
        }

        Assert.False(first.IsCompleted);
        Assert.True(h.Intercept.Resume(paused.Key));
        using var response = await first.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task An_edit_that_would_break_the_exchange_is_refused_whole_and_a_new_status_gets_its_own_reason_phrase()
    {
        await using var h = await WebHarness.StartAsync(output);
        h.Intercept.Filter = FlowFilter.Parse("~s ~u /json");
        using var client = h.ProxyClient();
        var sending = client.GetAsync(h.Origin.Url("/json"));
        var paused = await h.WaitForPausedAsync(Proxy.Intercept.InterceptPhase.Response);
        var before = paused.Exchange.Response!.Headers.Count;

        // An interim status as the final answer (the client would wait for another), a name that is not a token, a
        // value HttpHeaders.Add refuses: each an ArgumentException, nothing changed, still paused.
        Assert.Throws<ArgumentException>(() => h.Intercept.Resume(paused.Key, new Proxy.Intercept.InterceptEdit { StatusCode = 100 }));
        Assert.Throws<ArgumentException>(() => h.Intercept.Resume(paused.Key, new Proxy.Intercept.InterceptEdit { Headers = [new("X(A)", "1")] }));
        Assert.Throws<ArgumentException>(() => h.Intercept.Resume(paused.Key, new Proxy.Intercept.InterceptEdit { Headers = [new("X-A", "\u20AC")] }));
        Assert.Equal(before, paused.Exchange.Response.Headers.Count);
        Assert.Single(h.Intercept.Paused);

        Assert.True(h.Intercept.Resume(paused.Key, new Proxy.Intercept.InterceptEdit { StatusCode = 404 }));
        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("Not Found", response.ReasonPhrase);
    }

    [Fact]
    public async Task A_url_edit_to_another_origin_sends_the_new_authority_as_Host()
    {
        await using var first = RawOrigin.Recording();
        await using var second = RawOrigin.Recording();
        await using var h = await WebHarness.StartAsync(output);
        h.Intercept.Filter = FlowFilter.Parse("~q ~u /moved");
        using var client = h.ProxyClient();
        var sending = client.GetAsync($"http://127.0.0.1:{first.Port}/moved");
        var paused = await h.WaitForPausedAsync();

        Assert.True(h.Intercept.Resume(paused.Key, new Proxy.Intercept.InterceptEdit { Url = $"http://127.0.0.1:{second.Port}/moved/./%7Ex?to=second" }));
        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, first.AcceptedConnections);
        // The path as written: Uri would have sent "/moved/~x".
        Assert.StartsWith("GET /moved/./%7Ex?to=second HTTP/1.1\r\n", second.ReceivedText, StringComparison.Ordinal);
        Assert.Contains($"\r\nHost: 127.0.0.1:{second.Port}\r\n", second.ReceivedText, StringComparison.Ordinal);
    }
}
