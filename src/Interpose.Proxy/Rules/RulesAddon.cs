using System.Text;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Http;

namespace Interpose.Proxy.Rules;

/// <summary>
/// mitmproxy's rule options as one addon: <c>block_list</c>, <c>anticache</c>, <c>anticomp</c>, <c>map_remote</c>,
/// <c>map_local</c>, <c>modify_body</c> and <c>modify_headers</c>, applied in that order (mitmproxy's addon order) with
/// mitmproxy's semantics. The <c>interpose run</c> flags of the same names build one of these.
/// </summary>
/// <remarks>
/// <para>Request-side rules run in <see cref="RequestAsync"/>, once the request is complete (mitmproxy's
/// <c>request</c> hook); response-side ones in <see cref="ResponseAsync"/>. Once a rule answered (block-list, map-local)
/// the request-side rules after it are skipped, as in mitmproxy; the response-side ones still see the answer.</para>
/// <para>A rule that acts tags the exchange: the tag <c>rule:NAME</c> (<see cref="TagPrefix"/>, then block-list,
/// anticache, anticomp, map-remote, map-local, modify-body or modify-headers) holds the specs that acted, one per line.
/// The tags reach the recorded flow (<see cref="Flow.Tags"/>) and the flow log line.</para>
/// <para>A filter that reads bodies (<c>~b</c>, <c>~bq</c>, <c>~bs</c>) and a modify-body rule that may apply make the
/// proxy hold that body whole (up to <see cref="ProxyOptions.MaxBufferedBodyBytes"/>); other bodies keep streaming.</para>
/// <para>The rule lists are fixed when the addon is made; the addon is safe to share between connections.</para>
/// </remarks>
public sealed class RulesAddon : ProxyAddon
{
    /// <summary>The start of the tag names the rules set.</summary>
    public const string TagPrefix = "rule:";

    /// <summary>--block-list: answer matching requests with a status, or close (444).</summary>
    public IReadOnlyList<BlockListRule> BlockList { get; init; } = [];

    /// <summary>--anticache: remove <c>If-None-Match</c> and <c>If-Modified-Since</c> so that the origin sends the whole
    /// resource rather than a 304 (RFC 9110 §13.1.2, §13.1.3).</summary>
    public bool AntiCache { get; init; }

    /// <summary>--anticomp: ask the origin not to compress (<c>Accept-Encoding: identity</c>, RFC 9110 §12.5.3).</summary>
    public bool AntiComp { get; init; }

    /// <summary>--map-remote: rewrite request URLs before the origin is contacted.</summary>
    public IReadOnlyList<MapRemoteRule> MapRemote { get; init; } = [];

    /// <summary>--map-local: answer from local files.</summary>
    public IReadOnlyList<MapLocalRule> MapLocal { get; init; } = [];

    /// <summary>--modify-body: regex replacement in bodies.</summary>
    public IReadOnlyList<ModifyBodyRule> ModifyBody { get; init; } = [];

    /// <summary>--modify-headers: set or remove header fields.</summary>
    public IReadOnlyList<ModifyHeadersRule> ModifyHeaders { get; init; } = [];

    /// <summary>
    /// --stickycookie: when set, cookies from every response are kept (by domain, port and path, at most
    /// <see cref="MaxStickyCookies"/>) and sent on each later request that matches this filter and the cookie's scope,
    /// replacing the request's <c>Cookie</c> field (mitmproxy's <c>stickycookie</c>).
    /// </summary>
    public FlowFilter? StickyCookie
    {
        get => _stickyCookie;
        init
        {
            _stickyCookie = value;
            _jar = value is null ? null : new StickyCookieJar(() => Time.GetUtcNow());
        }
    }

    /// <summary>
    /// --stickyauth: when set, the <c>Authorization</c> field of every request is kept per host (the last one seen,
    /// for at most <see cref="MaxStickyAuthHosts"/> hosts), and a later request that matches this filter and has no
    /// <c>Authorization</c> of its own gets the one kept for its host (mitmproxy's <c>stickyauth</c>).
    /// </summary>
    public FlowFilter? StickyAuth { get; init; }

    /// <summary>The most hosts <see cref="StickyAuth"/> keeps a credential for: as many as the cookie jar keeps cookies.</summary>
    public const int MaxStickyAuthHosts = StickyCookieJar.MaxCookies;

    // Host (case-insensitive, RFC 9110 §4.2.3) -> the last Authorization value a request to it carried.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _stickyAuth = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The clock for cookie expiry (<c>Expires</c>); the system clock unless a test injects one.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The most cookies <see cref="StickyCookie"/> keeps: RFC 6265 §6.1's 3000.</summary>
    public const int MaxStickyCookies = StickyCookieJar.MaxCookies;

    private readonly FlowFilter? _stickyCookie;
    private readonly StickyCookieJar? _jar;

    /// <inheritdoc/>
    public override string Name => "rules";

    /// <summary>Asks for the request body when a rule needs it whole.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Not used.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="exchange"/> is null.</exception>
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (exchange.Response is null && NeedsBody(exchange))
        {
            exchange.Request.BufferBody = true;
        }

        return default;
    }

    /// <summary>The request-side rules, in mitmproxy's order.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Cancelled when the client goes away.</param>
    /// <returns>A task that completes when the rules ran.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="exchange"/> is null.</exception>
    /// <exception cref="IOException">A local file or an @file cannot be read, or a mapped file is too large.</exception>
    /// <exception cref="FormatException">An @file's content is not a valid header value, or map-remote made a URL that
    /// is not an absolute http(s) URL.</exception>
    /// <exception cref="System.Text.RegularExpressions.RegexMatchTimeoutException">A rule's regex ran too long.</exception>
    public override async ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);

        // mitmproxy: "if flow.response or flow.error or not flow.live: return".
        if (exchange.Response is not null || exchange.IsKilled)
        {
            return;
        }

        if (Block(exchange))
        {
            return;
        }

        if (AntiCache && exchange.Request.Headers.Remove("If-None-Match") + exchange.Request.Headers.Remove("If-Modified-Since") > 0)
        {
            Tag(exchange, "anticache", "anticache");
        }

        if (AntiComp && exchange.Request.Headers.Get("Accept-Encoding") != "identity")
        {
            exchange.Request.Headers.Set("Accept-Encoding", "identity");
            Tag(exchange, "anticomp", "anticomp");
        }

        foreach (var rule in MapRemote)
        {
            Remap(exchange, rule);
        }

        if (await MapLocalAsync(exchange, cancellationToken))
        {
            return;
        }

        await ModifyBodyAsync(exchange, exchange.Request, cancellationToken);
        await ModifyHeadersAsync(exchange, exchange.Request, cancellationToken);

        StickAuthorization(exchange);

        // mitmproxy's stickycookie: after the other rules; its cookies replace the request's Cookie field.
        if (_jar is not null && _stickyCookie!.Matches(exchange.AsFilterable()) && _jar.CookieFor(exchange.Request) is { } cookie)
        {
            exchange.Request.Headers.Set("Cookie", cookie);
            Tag(exchange, "stickycookie", _stickyCookie.Expression);
        }
    }

    /// <summary>Asks for the response body when a rule needs it whole.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Not used.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="exchange"/> is null.</exception>
    public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (exchange.Response is { } response && NeedsBody(exchange))
        {
            response.BufferBody = true;
        }

        return default;
    }

    /// <summary>The response-side rules: modify-body, then modify-headers.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Cancelled when the client goes away.</param>
    /// <returns>A task that completes when the rules ran.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="exchange"/> is null.</exception>
    /// <exception cref="IOException">An @file cannot be read.</exception>
    /// <exception cref="FormatException">An @file's content is not a valid header value.</exception>
    /// <exception cref="System.Text.RegularExpressions.RegexMatchTimeoutException">A rule's regex ran too long.</exception>
    public override async ValueTask ResponseAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (exchange.Response is not { } response || exchange.Error is not null || exchange.IsKilled)
        {
            return;
        }

        await ModifyBodyAsync(exchange, response, cancellationToken);
        await ModifyHeadersAsync(exchange, response, cancellationToken);
        _jar?.Store(exchange.Request, response);
    }

    /// <summary>mitmproxy's stickyauth (addons/stickyauth.py): remember every request's credential, lend it to matching ones without.</summary>
    private void StickAuthorization(HttpExchange exchange)
    {
        if (StickyAuth is not { } filter)
        {
            return;
        }

        var request = exchange.Request;
        if (request.Headers.Get("Authorization") is { } authorization)
        {
            if (_stickyAuth.Count < MaxStickyAuthHosts || _stickyAuth.ContainsKey(request.Host))
            {
                _stickyAuth[request.Host] = authorization;
            }
        }
        else if (filter.Matches(exchange.AsFilterable()) && _stickyAuth.TryGetValue(request.Host, out var kept))
        {
            request.Headers.Set("Authorization", kept);
            Tag(exchange, "stickyauth", filter.Expression);
        }
    }

    /// <summary>Adds <paramref name="spec"/> to the exchange's <c>rule:NAME</c> tag.</summary>
    private static void Tag(HttpExchange exchange, string rule, string spec)
    {
        var name = TagPrefix + rule;
        exchange.Tags[name] = exchange.Tags.TryGetValue(name, out var existing) && existing is string earlier ? earlier + "\n" + spec : spec;
    }

    private static bool Matches(FlowFilter? filter, HttpExchange exchange) => filter is null || filter.Matches(exchange.AsFilterable());

    /// <summary>Whether a rule needs the body of the side now being received (the response's when there is one).</summary>
    private bool NeedsBody(HttpExchange exchange)
    {
        foreach (var rule in ModifyBody)
        {
            if (ReadsBodies(rule.Filter?.Root) || Matches(rule.Filter, exchange))
            {
                return true;
            }
        }

        foreach (var rule in ModifyHeaders)
        {
            if (ReadsBodies(rule.Filter?.Root))
            {
                return true;
            }
        }

        if (exchange.Response is null)
        {
            foreach (var filter in BlockList.Select(r => r.Filter).Concat(MapRemote.Select(r => r.Filter)).Concat(MapLocal.Select(r => r.Filter)).Append(StickyAuth))
            {
                if (ReadsBodies(filter?.Root))
                {
                    return true;
                }
            }
        }

        return false;
    }

    internal static bool ReadsBodies(FilterNode? node) => node switch
    {
        FilterPattern pattern => pattern.Operator is FilterOperator.Body or FilterOperator.RequestBody or FilterOperator.ResponseBody,
        FilterNot not => ReadsBodies(not.Operand),
        FilterJunction junction => junction.Operands.Any(ReadsBodies),
        _ => false,
    };

    private bool Block(HttpExchange exchange)
    {
        foreach (var rule in BlockList)
        {
            if (rule.Filter.Matches(exchange.AsFilterable()))
            {
                Tag(exchange, "block-list", rule.Spec);
                if (rule.StatusCode == BlockListRule.NoResponse)
                {
                    exchange.Kill();
                }
                else
                {
                    exchange.Respond(new HttpResponse(rule.StatusCode));
                }

                return true;
            }
        }

        return false;
    }

    private static void Remap(HttpExchange exchange, MapRemoteRule rule)
    {
        if (!Matches(rule.Filter, exchange))
        {
            return;
        }

        var request = exchange.Request;
        var url = ExchangeFilterView.PrettyUrl(request);
        var mapped = rule.Apply(url);
        if (mapped == url)
        {
            return;
        }

        // Uri checks the scheme and the authority only: its PathAndQuery removes dot segments and unescapes (%7E to ~),
        // which breaks a faithful relay and signed URLs; the path goes as the rule wrote it (mitmproxy's re.sub).
        if (!Uri.TryCreate(mapped, UriKind.Absolute, out var target) || (target.Scheme != Uri.UriSchemeHttp && target.Scheme != Uri.UriSchemeHttps)
            || target.IdnHost.Length == 0 || RequestTargetParser.RawPathAndQuery(mapped) is not { } pathAndQuery)
        {
            throw new FormatException($"map-remote {rule.Spec} made '{mapped}', which is not an absolute http or https URL");
        }

        var hostChanged = !string.Equals(target.IdnHost.Trim('[', ']'), request.Host, StringComparison.OrdinalIgnoreCase) || target.Port != request.Port;
        request.Scheme = target.Scheme;
        request.Host = target.IdnHost.Trim('[', ']');
        request.Port = target.Port;
        request.Path = pathAndQuery;

        // mitmproxy's Request.url setter: the Host header follows the new authority.
        if (hostChanged && request.Headers.Contains("Host"))
        {
            request.Headers.Set("Host", request.Authority);
        }

        Tag(exchange, "map-remote", rule.Spec);
    }

    private async ValueTask<bool> MapLocalAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        if (MapLocal.Count == 0)
        {
            return false;
        }

        var url = ExchangeFilterView.PrettyUrl(exchange.Request);
        var tried = false;
        foreach (var rule in MapLocal)
        {
            if (!Matches(rule.Filter, exchange))
            {
                continue;
            }

            if (rule.Candidates(url) is not { } candidates)
            {
                // A name that would leave the directory: answered as missing.
                tried = true;
                continue;
            }

            foreach (var candidate in candidates)
            {
                tried = true;
                var real = LocalFiles.RealPath(candidate);
                if (real is null || !LocalFiles.IsInside(rule.LocalPath, real) || !File.Exists(real))
                {
                    continue;
                }

                var response = new HttpResponse(200);
                if (LocalFiles.MediaType(real) is { } mediaType)
                {
                    response.Headers.Add("Content-Type", mediaType);
                }

                response.SetBody(await ReadLocalFileAsync(real, cancellationToken));
                exchange.Respond(response);
                Tag(exchange, "map-local", rule.Spec);
                return true;
            }
        }

        if (tried)
        {
            exchange.Respond(new HttpResponse(404));
            Tag(exchange, "map-local", "404");
            return true;
        }

        return false;
    }

    private static async Task<byte[]> ReadLocalFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, useAsync: true);
        if (stream.Length > MapLocalRule.MaxFileBytes)
        {
            throw new IOException($"{path} is larger than {MapLocalRule.MaxFileBytes} bytes");
        }

        var bytes = new byte[stream.Length];
        await stream.ReadExactlyAsync(bytes, cancellationToken);
        return bytes;
    }

    private async ValueTask ModifyBodyAsync(HttpExchange exchange, HttpMessage message, CancellationToken cancellationToken)
    {
        foreach (var rule in ModifyBody)
        {
            if (!message.HasBody || !Matches(rule.Filter, exchange))
            {
                continue;
            }

            // mitmproxy edits .content: the decoded body, encoded again with the same Content-Encoding.
            var encoding = message.Headers.Get("Content-Encoding");
            if (!ContentCoding.TryDecode(message.Body, encoding, out var decoded))
            {
                continue;
            }

            var replaced = await rule.ApplyAsync(decoded, cancellationToken);
            if (replaced.AsSpan().SequenceEqual(decoded.Span))
            {
                continue;
            }

            message.SetBody(string.IsNullOrWhiteSpace(encoding) ? replaced : ContentCoding.Encode(replaced, encoding));
            Tag(exchange, "modify-body", rule.Spec);
        }
    }

    private async ValueTask ModifyHeadersAsync(HttpExchange exchange, HttpMessage message, CancellationToken cancellationToken)
    {
        if (ModifyHeaders.Count == 0)
        {
            return;
        }

        // mitmproxy: every spec is matched first, then the matching names removed, then the non-empty values added.
        var matching = ModifyHeaders.Where(rule => Matches(rule.Filter, exchange)).ToList();
        foreach (var rule in matching)
        {
            message.Headers.Remove(rule.Name);
        }

        foreach (var rule in matching)
        {
            var value = await rule.ReadValueAsync(cancellationToken);
            if (value.Length > 0)
            {
                message.Headers.Add(rule.Name, value);
            }

            Tag(exchange, "modify-headers", rule.Spec);
        }
    }

    /// <summary>The tags of <paramref name="tags"/> set by rules, as <c>name,name</c> without the prefix, and server
    /// replay's (<c>server-replay</c>, <c>server-replay-extra</c>), or null.</summary>
    internal static string? Describe(IReadOnlyDictionary<string, object?>? tags)
    {
        if (tags is null)
        {
            return null;
        }

        StringBuilder? sb = null;
        foreach (var name in tags.Keys)
        {
            if (name.StartsWith(TagPrefix, StringComparison.Ordinal))
            {
                (sb ??= new StringBuilder()).Append(sb.Length > 0 ? "," : "").Append(name.AsSpan(TagPrefix.Length));
            }
            else if (name is ServerReplayAddon.Tag or ServerReplayAddon.ExtraTag)
            {
                (sb ??= new StringBuilder()).Append(sb.Length > 0 ? "," : "").Append(name);
            }
        }

        return sb?.ToString();
    }
}
