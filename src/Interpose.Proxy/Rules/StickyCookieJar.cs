using System.Globalization;

namespace Interpose.Proxy.Rules;

/// <summary>
/// mitmproxy's <c>stickycookie</c> jar: cookies set by any response, kept by (domain, port, path), and sent on every
/// later request that matches the option's filter and the cookie's domain, port and path, replacing the request's
/// <c>Cookie</c> field. Safe to use from many connections at once.
/// </summary>
/// <remarks>
/// One lock guards the jar: it holds at most <see cref="MaxCookies"/> cookies, and a scope (a map of its own) only
/// while it has a cookie, so a request's walk over the scopes is bounded too. NOTE: a concurrent map of concurrent
/// maps was tried; removing a scope that became empty raced with a store into it (the cookie landed in a detached map
/// and its count leaked), and the lock is held for microseconds only on exchanges that set or need cookies.
/// </remarks>
internal sealed class StickyCookieJar(Func<DateTimeOffset> now)
{
    /// <summary>
    /// Cookies kept at most: RFC 6265 §6.1's floor for what a user agent stores (3000 in total), so that an origin
    /// setting cookies without end cannot grow the proxy's memory without end; past it new cookies are not kept.
    /// </summary>
    public const int MaxCookies = 3000;

    private readonly Lock _gate = new();
    private readonly Dictionary<(string Domain, int Port, string Path), Dictionary<string, string>> _jar = [];
    private int _count;

    /// <summary>The scopes (domain, port, path) that hold at least one cookie.</summary>
    internal int ScopeCount
    {
        get
        {
            lock (_gate)
            {
                return _jar.Count;
            }
        }
    }

    /// <summary>The cookies kept.</summary>
    internal int Count
    {
        get
        {
            lock (_gate)
            {
                return _count;
            }
        }
    }

    /// <summary>Takes in (or, when expired, forgets) the cookies a response sets (RFC 6265 §4.1).</summary>
    public void Store(HttpRequest request, HttpResponse response)
    {
        foreach (var header in response.Headers.GetValues("Set-Cookie"))
        {
            var parts = header.Split(';');
            var equals = parts[0].IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                continue;
            }

            var name = parts[0][..equals].Trim();
            var value = parts[0][(equals + 1)..].Trim();
            var domain = request.Host;
            var path = "/";
            var expired = false;
            foreach (var attribute in parts.AsSpan(1))
            {
                var eq = attribute.IndexOf('=', StringComparison.Ordinal);
                var key = (eq < 0 ? attribute : attribute[..eq]).Trim();
                var text = eq < 0 ? "" : attribute[(eq + 1)..].Trim();
                if (key.Equals("domain", StringComparison.OrdinalIgnoreCase) && text.Length > 0)
                {
                    domain = text;
                }
                else if (key.Equals("path", StringComparison.OrdinalIgnoreCase) && text.Length > 0)
                {
                    path = text;
                }
                else if (key.Equals("max-age", StringComparison.OrdinalIgnoreCase))
                {
                    expired |= int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seconds) && seconds <= 0;
                }
                else if (key.Equals("expires", StringComparison.OrdinalIgnoreCase))
                {
                    expired |= DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) && at < now();
                }
            }

            // mitmproxy: a cookie is only taken for the host that set it (or a domain it belongs to).
            if (!DomainMatch(request.Host, domain))
            {
                continue;
            }

            Keep((domain, request.Port, path), name, expired ? null : value);
        }
    }

    /// <summary>The <c>Cookie</c> value for <paramref name="request"/> (RFC 6265 §5.4), or null when no cookie applies.</summary>
    public string? CookieFor(HttpRequest request)
    {
        List<string>? pairs = null;
        lock (_gate)
        {
            foreach (var ((domain, port, path), cookies) in _jar)
            {
                if (port == request.Port && request.Path.StartsWith(path, StringComparison.Ordinal) && DomainMatch(request.Host, domain))
                {
                    foreach (var (name, value) in cookies)
                    {
                        (pairs ??= []).Add(name + "=" + value);
                    }
                }
            }
        }

        return pairs is null ? null : string.Join("; ", pairs);
    }

    /// <summary>Sets a cookie of <paramref name="scope"/>, or forgets it when <paramref name="value"/> is null (expired).
    /// Past <see cref="MaxCookies"/> a new cookie is not kept, and no scope is made for it; a scope left without cookies
    /// is removed.</summary>
    private void Keep((string Domain, int Port, string Path) scope, string name, string? value)
    {
        lock (_gate)
        {
            _jar.TryGetValue(scope, out var cookies);
            if (value is null)
            {
                if (cookies is not null && cookies.Remove(name))
                {
                    _count--;
                    if (cookies.Count == 0)
                    {
                        _jar.Remove(scope);
                    }
                }

                return;
            }

            if (cookies is not null && cookies.ContainsKey(name))
            {
                cookies[name] = value;
                return;
            }

            if (_count >= MaxCookies)
            {
                return;
            }

            if (cookies is null)
            {
                _jar[scope] = cookies = new Dictionary<string, string>(StringComparer.Ordinal);
            }

            cookies[name] = value;
            _count++;
        }
    }

    /// <summary>
    /// Python's <c>http.cookiejar.domain_match</c> as mitmproxy uses it (RFC 2965 §1), also trying the domain without its
    /// leading dot: equal names, or <paramref name="host"/> ending in a dotted <paramref name="domain"/>.
    /// </summary>
    internal static bool DomainMatch(string host, string domain)
    {
        if (host.Equals(domain, StringComparison.OrdinalIgnoreCase) || host.Equals(domain.TrimStart('.'), StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var dotted = domain.StartsWith('.') ? domain : null;
        return dotted is { Length: > 1 } && host.Length > dotted.Length && host.EndsWith(dotted, StringComparison.OrdinalIgnoreCase)
            && !System.Net.IPAddress.TryParse(host, out _);
    }
}
