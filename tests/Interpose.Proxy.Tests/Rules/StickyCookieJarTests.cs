using Interpose.Proxy.Rules;

namespace Interpose.Proxy.Tests.Rules;

/// <summary>The stickycookie jar's bounds: cookies capped at RFC 6265 §6.1's 3000, scopes only while they hold one.</summary>
public sealed class StickyCookieJarTests
{
    private static readonly HttpRequest Request = new("GET", new Uri("http://example.test/"));

    [Fact]
    public void Past_the_cap_a_cookie_makes_no_scope_and_a_scope_left_empty_is_removed()
    {
        var jar = new StickyCookieJar(() => DateTimeOffset.UnixEpoch);

        // Each cookie in a path of its own: one scope per cookie, then 500 more past the cap.
        for (var i = 0; i < StickyCookieJar.MaxCookies + 500; i++)
        {
            jar.Store(Request, SetCookie($"c{i}=v; Path=/p{i}"));
        }

        Assert.Equal(StickyCookieJar.MaxCookies, jar.Count);
        Assert.Equal(StickyCookieJar.MaxCookies, jar.ScopeCount);

        for (var i = 0; i < StickyCookieJar.MaxCookies; i++)
        {
            jar.Store(Request, SetCookie($"c{i}=; Path=/p{i}; Max-Age=0"));
        }

        Assert.Equal(0, jar.Count);
        Assert.Equal(0, jar.ScopeCount);
        jar.Store(Request, SetCookie("again=1; Path=/"));
        Assert.Equal("again=1", jar.CookieFor(Request));
    }

    private static HttpResponse SetCookie(string value)
    {
        var response = new HttpResponse(200);
        response.Headers.Add("Set-Cookie", value);
        return response;
    }
}
