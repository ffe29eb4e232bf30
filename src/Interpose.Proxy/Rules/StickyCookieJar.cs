using System.Collections.Concurrent;
using System.Globalization;

namespace Interpose.Proxy.Rules;

/// <summary>
/// mitmproxy's <c>stickycookie</c> jar: cookies set by any response, kept by (domain, port, path), and sent on every
/// later request that matches the option's filter and the cookie's domain, port and path, replacing the request's
/// <c>Cookie</c> field. Safe to use from many connections at once.
/// </summary>
internal sealed class StickyCookieJar(Func<DateTimeOffset> now)
{
    /// <summary>
    /// Cookies kept at most: RFC 6265 §6.1's floor for what a user agent stores (3000 in total), so that an origin
    /// setting cookies without end cannot grow the proxy's memory without end; past it new cookies are not kept.
    /// </summary>
    public const int MaxCookies = 3000;

    private readonly ConcurrentDictionary<(string Domain, int Port, string Path), ConcurrentDictionary<string, string>> _jar = new();
    private int _count;

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

            var scope = (domain, request.Port, path);
            if (expired)
            {
                if (_jar.TryGetValue(scope, out var cookies) && cookies.TryRemove(name, out _))
                {
                    Interlocked.Decrement(ref _count);
                }

                continue;
            }

            var set = _jar.GetOrAdd(scope, _ => new ConcurrentDictionary<string, string>(StringComparer.Ordinal));
            if (set.ContainsKey(name))
            {
                set[name] = value;
            }
            else if (Interlocked.Increment(ref _count) <= MaxCookies)
            {
                if (!set.TryAdd(name, value))
                {
                    Interlocked.Decrement(ref _count);
                    set[name] = value;
                }
            }
            else
            {
                Interlocked.Decrement(ref _count);
            }
        }
    }

    /// <summary>The <c>Cookie</c> value for <paramref name="request"/> (RFC 6265 §5.4), or null when no cookie applies.</summary>
    public string? CookieFor(HttpRequest request)
    {
        List<string>? pairs = null;
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

        return pairs is null ? null : string.Join("; ", pairs);
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
