using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Flows.Har;
using Interpose.Core.Http;
using Interpose.Proxy.Intercept;
using Interpose.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Interpose.Web;

/// <summary>
/// The UI's HTTP surface. Handlers are plain <see cref="RequestDelegate"/>s that parse their own input, so every
/// malformed request is answered 400 with a reason by this code (never a binding exception's 500), and nothing needs
/// reflection (native AOT).
/// </summary>
/// <remarks>
/// <code>
/// request ─► 1 security headers ─► 2 Host check (403) ─► 3 token check on /api (401) ─► 4 handler ─► 5 errors → 400/404/409
/// </code>
/// </remarks>
internal sealed class WebApi : IDisposable
{
    /// <summary>The largest API request body: an edited message with its body. Kestrel's default is 30 MB; a UI edit
    /// needs far less, and the cap bounds what a token holder can make the process buffer.</summary>
    public const long MaxRequestBodyBytes = 16 * 1024 * 1024;

    /// <summary>The live list's batching interval: at most ten pushes a second, so a busy proxy does not flood the
    /// browser (mitmweb batches its WebSocket updates similarly).</summary>
    public static readonly TimeSpan BatchInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>The pause after a push that had to skip rows (a tail-following browser got more new rows than
    /// <see cref="FlowFeed.TailRows"/> since the last push): four pushes a second while flows arrive faster than anyone
    /// can read them. Every push makes the page redraw each row in view (they all move), and a headless Chromium on the
    /// live list spent 0.007-0.013 ms of CPU per proxied request at ten pushes a second against 0.003-0.004 at four, on
    /// the proxy's two cores (docs/performance.md, "Web UI"). The pause is back to <see cref="BatchInterval"/> after the
    /// first push that skipped nothing.</summary>
    public static readonly TimeSpan BusyBatchInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Rows sent in one push at most; the rest follow in the next.</summary>
    public const int MaxBatchRows = 5_000;

    /// <summary>Rows in one list response at most: 100,000, what the virtualized list is built and tested for.</summary>
    public const int MaxListRows = 100_000;

    /// <summary>The body preview's default size: enough for any page-sized JSON or text, small enough for the DOM.</summary>
    public const int DefaultPreviewBytes = 256 * 1024;

    /// <summary>How long a download link works: long enough to click, short enough to be useless if copied.</summary>
    public static readonly TimeSpan TicketLifetime = TimeSpan.FromSeconds(60);

    /// <summary>Download links outstanding at most; the oldest are dropped past it.</summary>
    public const int MaxTickets = 1_000;

    private const string ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:";

    /// <summary>Fields a replayed request does not copy: its framing and connection are its own (RFC 9112 §6,
    /// RFC 9110 §7.6.1), and Host follows the URL (RFC 9110 §7.2).</summary>
    private static readonly HashSet<string> NotReplayed = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Content-Length", "Transfer-Encoding", "Connection", "Proxy-Connection", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization",
        WebReplayMarker.Header,
    };

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly WebUiOptions _options;
    private readonly IFlowStore _store;
    private readonly byte[] _token;
    private readonly Func<IPEndPoint> _endPoint;
    private readonly ILogger _logger;
    private readonly StaticAssets _assets = StaticAssets.Load();
    private readonly ConcurrentDictionary<string, (Guid Id, bool Request, bool Decode, DateTimeOffset Expires)> _tickets = new(StringComparer.Ordinal);
    private readonly FlowReplayer? _replayer;

    /// <summary>Signalled when the server begins to stop (<see cref="Map"/> takes it from the application's lifetime):
    /// open event streams end then, so the stop need not wait for them.</summary>
    private CancellationToken _stopping;

    public WebApi(WebUiOptions options, string token, Func<IPEndPoint> endPoint, ILogger logger)
    {
        _options = options;
        _store = options.Store!;
        _token = Encoding.UTF8.GetBytes(token);
        _endPoint = endPoint;
        _logger = logger;
        _replayer = options.ProxyUrl is { } proxy ? new FlowReplayer(proxy, options.ProxyCertificateAuthority!) : null;
        if (options.Intercept is { } intercept && options.Feed is { } feed)
        {
            intercept.Changed += (_, _) => feed.InterceptChanged();
        }
    }

    public void Dispose() => _replayer?.Dispose();

    public void Map(WebApplication app)
    {
        _stopping = app.Lifetime.ApplicationStopping;
        app.Use(GuardAsync);
        app.MapGet("/", context => ServeAsset(context, "index.html"));
        app.MapGet("/assets/{name}", context => ServeAsset(context, (string)context.Request.RouteValues["name"]!));
        app.MapGet("/download/{ticket}", DownloadAsync);
        app.MapGet("/api/info", InfoAsync);
        app.MapGet("/api/flows", ListAsync);
        app.MapGet("/api/flows/{id}", DetailsAsync);
        app.MapMethods("/api/flows/{id}", ["PATCH"], UpdateMetaAsync);
        app.MapDelete("/api/flows/{id}", DeleteAsync);
        app.MapGet("/api/flows/{id}/body/{side}", BodyAsync);
        app.MapPost("/api/flows/{id}/body/{side}/download", TicketAsync);
        app.MapGet("/api/flows/{id}/curl", CurlAsync);
        app.MapPost("/api/flows/{id}/duplicate", DuplicateAsync);
        app.MapPost("/api/flows/{id}/replay", ReplayAsync);
        app.MapPost("/api/clear", ClearAsync);
        app.MapGet("/api/har", HarAsync);
        app.MapPost("/api/har", HarAsync);
        app.MapGet("/api/events", EventsAsync);
        app.MapGet("/api/intercept", InterceptStateAsync);
        app.MapPut("/api/intercept", SetInterceptFilterAsync);
        app.MapPost("/api/intercept/{key}/resume", ResumeAsync);
        app.MapPost("/api/intercept/{key}/kill", KillAsync);
        app.MapFallback(context => Error(context, 404, "no such resource"));
    }

    private async Task GuardAsync(HttpContext context, RequestDelegate next)
    {
        // 1. On every answer, the error ones included.
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-store";

        // 2. DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example. A name
        //    other than localhost is never this UI (RFC 9110 §7.2: Host names the target).
        if (!IsOwnHost(context.Request.Host))
        {
            Refuse(context, "Host is not the UI's address");
            await Error(context, 403, "Host is not this UI's address (DNS rebinding protection)");
            return;
        }

        // 3. The token in a header: a cross-site page can neither read it nor send a custom header without a CORS
        //    preflight, which this server does not answer. Every path needs it but the page, its assets and one-time
        //    download tickets: deny by default, as routing matches paths case-insensitively (/API/clear is /api/clear).
        if (!IsPublic(context.Request.Path) && !HasToken(context.Request))
        {
            Refuse(context, "no valid token");
            await Error(context, 401, "missing or wrong " + WebUiServer.TokenHeader);
            return;
        }

        // 4. and 5.
        try
        {
            await next(context);
        }
        catch (BadInputException ex)
        {
            await Error(context, 400, ex.Message, ex.Position);
        }
        catch (BadHttpRequestException ex)
        {
            await Error(context, ex.StatusCode, ex.Message);
        }
        catch (RegexMatchTimeoutException)
        {
            await Error(context, 400, "a regular expression of the filter took too long (see docs/filters.md, Limits)");
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The browser went away.
        }
    }

    /// <summary>The paths served without the token: the page and its assets (nothing of the flows in them), and
    /// downloads, whose one-time ticket was issued through the API.</summary>
    private static bool IsPublic(PathString path) =>
        path == "/"
        || path.StartsWithSegments("/assets", StringComparison.OrdinalIgnoreCase)
        || path.StartsWithSegments("/download", StringComparison.OrdinalIgnoreCase);

    private void Refuse(HttpContext context, string reason)
    {
        WebLog.Refused(_logger, context.Request.Method, context.Request.Path, context.Connection.RemoteIpAddress, reason);
    }

    private bool IsOwnHost(HostString host)
    {
        if (!host.HasValue || host.Port is not { } port || port != _endPoint().Port)
        {
            return false;
        }

        var name = host.Host;
        return name.Equals("localhost", StringComparison.OrdinalIgnoreCase) || IPAddress.TryParse(name.Trim('[', ']'), out _);
    }

    private bool HasToken(HttpRequest request) =>
        request.Headers.TryGetValue(WebUiServer.TokenHeader, out var values) && values.Count == 1 && values[0] is { } given
        && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), _token);

    private Task ServeAsset(HttpContext context, string name)
    {
        if (!_assets.TryGet(name, out var asset))
        {
            return Error(context, 404, "no such asset");
        }

        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers.ETag = asset.ETag;
        if (context.Request.Headers.IfNoneMatch == asset.ETag)
        {
            context.Response.StatusCode = 304;
            return Task.CompletedTask;
        }

        context.Response.ContentType = asset.ContentType;
        context.Response.ContentLength = asset.Content.Length;
        return context.Response.Body.WriteAsync(asset.Content, context.RequestAborted).AsTask();
    }

    private Task InfoAsync(HttpContext context) => Json(context, new ApiInfo(
        _options.ReadOnly, _replayer is not null, _options.Intercept is not null, _options.Intercept?.Filter?.ToString(), _options.SourceName),
        WebJsonContext.Default.ApiInfo);

    private async Task ListAsync(HttpContext context)
    {
        var filter = ParseFilter(context.Request.Query["filter"]);
        var highlight = ParseFilter(context.Request.Query["highlight"], "highlight");
        var limit = ParseInt(context.Request.Query["limit"], "limit", 1, MaxListRows);
        var offset = ParseInt(context.Request.Query["offset"], "offset", 0, int.MaxValue);
        var tail = ParseInt(context.Request.Query["tail"], "tail", 1, MaxListRows);
        var includeBodies = ReadsBodies(highlight);
        if (tail is not null)
        {
            // The last rows (the page's first load): their position comes with them, so the rows before them load
            // by position (offset and limit) when they are scrolled to.
            if (offset is not null || limit is not null)
            {
                throw new BadInputException("tail: not with offset or limit (tail=N is the last N rows)");
            }

            var last = await _store.TailAsync(filter, tail.Value, includeBodies, context.RequestAborted);
            await Json(context, TailResponse(last, highlight), WebJsonContext.Default.FlowListResponse);
            return;
        }

        var rows = new List<FlowSummary>();
        var truncated = false;
        var query = new FlowQuery
        {
            Filter = filter,
            Offset = offset ?? 0,
            Limit = (limit ?? MaxListRows) + 1,
            IncludeBodies = includeBodies,
        };
        await foreach (var flow in _store.QueryAsync(query, context.RequestAborted))
        {
            if (rows.Count == query.Limit - 1)
            {
                truncated = true;
                break;
            }

            rows.Add(FlowSummary.From(flow, highlight?.Matches(flow.AsFilterable()) == true));
        }

        await Json(context, new FlowListResponse(rows, truncated, query.Offset, null), WebJsonContext.Default.FlowListResponse);
    }

    /// <summary>The last rows of a list and their position (their total with them).</summary>
    private static FlowListResponse TailResponse(FlowTail tail, FlowFilter? highlight)
    {
        var rows = new List<FlowSummary>(tail.Flows.Count);
        foreach (var flow in tail.Flows)
        {
            rows.Add(FlowSummary.From(flow, highlight?.Matches(flow.AsFilterable()) == true));
        }

        return new FlowListResponse(rows, false, (int)Math.Min(int.MaxValue, tail.Offset), tail.Total);
    }

    private async Task DetailsAsync(HttpContext context)
    {
        var flow = await FindAsync(context);
        if (flow is null)
        {
            return;
        }

        var details = new FlowDetails
        {
            Summary = FlowSummary.From(flow),
            Client = flow.Client?.ToString(),
            Server = flow.Server?.ToString(),
            Error = flow.Error,
            Tags = flow.Tags.Count == 0 ? null : flow.Tags,
        };
        if (flow is TunnelFlow tunnel)
        {
            details = details with
            {
                Tunnel = new TunnelDetails(tunnel.Kind.Name(), tunnel.Host, tunnel.Port, tunnel.Sni,
                    tunnel.BytesFromClient, tunnel.BytesFromServer, tunnel.DurationMs),
            };
        }

        if (flow is HttpFlow http)
        {
            details = details with
            {
                RequestLine = http.Request.Method + " " + http.Request.Url + " " + http.Request.HttpVersion,
                StatusLine = http.Response is { } r ? r.HttpVersion + " " + r.StatusCode.ToString(CultureInfo.InvariantCulture) + " " + r.Reason : null,
                Request = Message(http.Request),
                Response = http.Response is { } response ? Message(response) : null,
                Timings = http.Timings,
                ClientTls = Tls(http.ClientTls),
                ServerTls = Tls(http.ServerTls),
                WebSocket = http.WebSocket is { } webSocket ? WebSocket(webSocket) : null,
            };
        }

        await Json(context, details, WebJsonContext.Default.FlowDetails);
    }

    private async Task BodyAsync(HttpContext context)
    {
        var (flow, message) = await FindMessageAsync(context);
        if (message is null)
        {
            return;
        }

        var decode = context.Request.Query["decode"] != "0";
        var max = ParseInt(context.Request.Query["max"], "max", 0, int.MaxValue) ?? DefaultPreviewBytes;
        var content = Content(message, decode, out var decoded);
        var response = context.Response;

        // Never the recorded Content-Type: a body is data, not a page of this origin (nosniff keeps it so).
        response.ContentType = "application/octet-stream";
        response.Headers["X-Interpose-Content-Type"] = VisibleAscii(message.Headers.Get("Content-Type") ?? "");
        response.Headers["X-Interpose-Length"] = content.Length.ToString(CultureInfo.InvariantCulture);
        response.Headers["X-Interpose-Wire-Length"] = message.Body.Length.ToString(CultureInfo.InvariantCulture);
        response.Headers["X-Interpose-Decoded"] = decoded ? "1" : "0";
        response.Headers["X-Interpose-Recording-Truncated"] = message.Body.IsTruncated ? "1" : "0";
        var slice = content.Length > max ? content[..max] : content;
        response.ContentLength = slice.Length;
        _ = flow;
        await response.Body.WriteAsync(slice, context.RequestAborted);
    }

    private async Task TicketAsync(HttpContext context)
    {
        var (flow, message) = await FindMessageAsync(context);
        if (message is null)
        {
            return;
        }

        var now = _options.TimeProvider.GetUtcNow();
        foreach (var expired in _tickets.Where(t => t.Value.Expires <= now).Select(t => t.Key).ToList())
        {
            _tickets.TryRemove(expired, out _);
        }

        if (_tickets.Count >= MaxTickets)
        {
            foreach (var oldest in _tickets.OrderBy(t => t.Value.Expires).Take(_tickets.Count - MaxTickets + 1).Select(t => t.Key).ToList())
            {
                _tickets.TryRemove(oldest, out _);
            }
        }

        var ticket = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var request = (string)context.Request.RouteValues["side"]! == "request";
        _tickets[ticket] = (flow!.Id, request, context.Request.Query["decode"] != "0", now + TicketLifetime);
        await Json(context, new DownloadTicket("/download/" + ticket), WebJsonContext.Default.DownloadTicket);
    }

    /// <summary>A whole body as a file: a one-time link (the browser cannot send the token header with a plain link), so
    /// a body of hundreds of MiB never passes through the page.</summary>
    private async Task DownloadAsync(HttpContext context)
    {
        var key = (string)context.Request.RouteValues["ticket"]!;
        if (!_tickets.TryRemove(key, out var ticket) || ticket.Expires <= _options.TimeProvider.GetUtcNow())
        {
            await Error(context, 404, "the download link is unknown, used or expired");
            return;
        }

        if (await _store.GetAsync(ticket.Id, context.RequestAborted) is not HttpFlow flow || (ticket.Request ? flow.Request as FlowMessage : flow.Response) is not { } message)
        {
            await Error(context, 404, "the flow is gone");
            return;
        }

        var content = Content(message, ticket.Decode, out _);
        context.Response.ContentType = "application/octet-stream";
        context.Response.Headers.ContentDisposition = $"attachment; filename=\"{flow.Id:N}-{(ticket.Request ? "request" : "response")}.bin\"";
        context.Response.ContentLength = content.Length;
        await context.Response.Body.WriteAsync(content, context.RequestAborted);
    }

    private async Task CurlAsync(HttpContext context)
    {
        if (await FindAsync(context) is not { } flow)
        {
            return;
        }

        if (flow is not HttpFlow http)
        {
            await Error(context, 409, "only HTTP flows have a request to copy");
            return;
        }

        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(CurlScript.Command(http), context.RequestAborted);
    }

    private async Task HarAsync(HttpContext context)
    {
        // The ids (or the filter) are read before the answer starts, so that a bad request still gets its 400.
        IAsyncEnumerable<HttpFlow> flows;
        if (HttpMethods.IsPost(context.Request.Method))
        {
            var ids = await ReadJsonAsync(context, WebJsonContext.Default.IdList);
            flows = FlowsByIdAsync(ids.Ids ?? [], context.RequestAborted);
        }
        else
        {
            var filter = ParseFilter(context.Request.Query["filter"]);
            flows = FlowsMatchingAsync(filter, context.RequestAborted);
        }

        // Written entry by entry as the store yields them: the proxy holds one flow's decoded bodies at a time, not the
        // whole document (so no Content-Length).
        context.Response.ContentType = "application/json";
        context.Response.Headers.ContentDisposition = "attachment; filename=\"flows.har\"";
        await HarFile.ExportAsync(flows, context.Response.Body, context.RequestAborted);
    }

    private async IAsyncEnumerable<HttpFlow> FlowsByIdAsync(IEnumerable<Guid> ids, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var id in ids)
        {
            if (await _store.GetAsync(id, cancellationToken) is HttpFlow flow)
            {
                yield return flow;
            }
        }
    }

    private async IAsyncEnumerable<HttpFlow> FlowsMatchingAsync(FlowFilter? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var flow in _store.QueryAsync(new FlowQuery { Filter = filter, IncludeBodies = true }, cancellationToken))
        {
            if (flow is HttpFlow http)
            {
                yield return http;
            }
        }
    }

    private async Task UpdateMetaAsync(HttpContext context)
    {
        if (!await WritableAsync(context) || await FindAsync(context, bodies: true) is not { } flow)
        {
            return;
        }

        var update = await ReadJsonAsync(context, WebJsonContext.Default.MetaUpdate);
        var changed = flow with { Marker = Blank(update.Marker ?? flow.Marker), Comment = Blank(update.Comment ?? flow.Comment) };
        // The store tells the live list (its observer, the feed): the browsers get the changed row.
        await _store.AppendAsync([changed], context.RequestAborted);
        await Json(context, FlowSummary.From(changed), WebJsonContext.Default.FlowSummary);

        static string? Blank(string? text) => string.IsNullOrEmpty(text) ? null : text;
    }

    private async Task DeleteAsync(HttpContext context)
    {
        if (!await WritableAsync(context) || ParseId(context) is not { } id)
        {
            return;
        }

        // Read first: the browsers are told whether the flow was in their lists (their filters), loaded or not.
        var flow = await _store.GetAsync(id, context.RequestAborted);
        var count = flow is null ? 0 : await _store.DeleteByIdAsync([id], context.RequestAborted);
        if (count == 0)
        {
            await Error(context, 404, "no such flow");
            return;
        }

        _options.Feed?.Removed([flow!]);
        await Json(context, new CountResult(count), WebJsonContext.Default.CountResult);
    }

    private async Task ClearAsync(HttpContext context)
    {
        if (!await WritableAsync(context))
        {
            return;
        }

        var count = await _store.DeleteAsync(null, context.RequestAborted);
        _options.Feed?.Removed(null);
        await Json(context, new CountResult(count), WebJsonContext.Default.CountResult);
    }

    private async Task DuplicateAsync(HttpContext context)
    {
        if (!await WritableAsync(context) || await FindAsync(context, bodies: true) is not { } flow)
        {
            return;
        }

        var copy = flow with { Id = Guid.NewGuid() };
        await _store.AppendAsync([copy], context.RequestAborted);
        await Json(context, FlowSummary.From(copy), WebJsonContext.Default.FlowSummary);
    }

    private async Task ReplayAsync(HttpContext context)
    {
        if (_replayer is null)
        {
            await Error(context, 409, "replay needs a running proxy (interpose run --web), not a saved file");
            return;
        }

        if (await FindAsync(context, bodies: true) is not { } found)
        {
            return;
        }

        if (found is not HttpFlow flow)
        {
            await Error(context, 409, "only HTTP flows can be replayed");
            return;
        }

        var edit = await ReadEditAsync(context);
        if (!flow.Request.Body.IsWhole && !HasBody(edit))
        {
            // Sent as recorded, the origin would get the recorded part as the whole body (a Content-Length of that part):
            // not the request that was made, whether the recording cap cut it or the exchange failed mid-body. The CLI's
            // replay refuses both too (ReplayRequest.Serialize).
            var body = flow.Request.Body;
            var why = body.IsTruncated
                ? $"recorded cut ({body.Content.Length} of {body.Length} bytes)"
                : $"recorded cut (it ended after {body.Length} bytes: the exchange failed mid-body)";
            await Error(context, 409, $"the request body was {why}: send the body with the edit, or record it again");
            return;
        }

        var request = ReplayRequest(flow, edit);
        if (_options.ReplayMarker is { } marker)
        {
            request.Headers.TryAddWithoutValidation(WebReplayMarker.Header, marker.ValueFor(flow.Id));
        }

        try
        {
            var (status, bodyError) = await _replayer.SendAsync(request, context.RequestAborted);
            if (bodyError is not null)
            {
                WebLog.ReplayFailed(_logger, flow.Id, bodyError);
            }

            await Json(context, new ReplayResult(status, bodyError is null ? null : "the response body broke off: " + bodyError.Message), WebJsonContext.Default.ReplayResult);
        }
        catch (HttpRequestException ex)
        {
            WebLog.ReplayFailed(_logger, flow.Id, ex);
            await Json(context, new ReplayResult(null, ex.Message), WebJsonContext.Default.ReplayResult);
        }
    }

    private async Task EventsAsync(HttpContext context)
    {
        var filter = ParseFilter(context.Request.Query["filter"]);
        var highlight = ParseFilter(context.Request.Query["highlight"], "highlight");
        var list = ParseInt(context.Request.Query["list"], "list", 1, MaxListRows);
        if (_options.Feed is not { } feed)
        {
            await Error(context, 409, "this UI shows a saved file: there is no live list");
            return;
        }

        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        // tail=1 (the page): new rows come as the newest FlowFeed.TailRows of each push plus a "skipped" count of the
        // others (placeholders the page fills from /api/flows when they scroll into view); changed rows as "changed".
        // list=N (the page): the stream begins with the list's last N rows ("list", as /api/flows?tail=N answers), read
        // after the subscription, and then tells only what that list does not have (FlowFeed, by sequence): no flow is
        // in neither, none in both, and no eviction is counted twice.
        var tail = context.Request.Query["tail"] == "1";
        using var subscription = feed.Subscribe(filter, highlight, tail, lined: list is not null);

        // An event stream never ends on its own: Kestrel's graceful stop would wait for it until its shutdown timeout
        // (30 s) and then abort the connection. It ends when the server starts stopping, as when the browser leaves.
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping);
        var token = ended.Token;
        var rows = new List<FlowSummary>();
        var tailRows = new List<FlowSummary>();
        var removed = new List<Guid>();
        var buffer = new MemoryStream();
        try
        {
            await response.WriteAsync(": live\n\n", token);
            await response.Body.FlushAsync(token);
            if (list is { } rowsWanted)
            {
                var last = await _store.TailAsync(filter, rowsWanted, ReadsBodies(highlight), token);
                subscription.Begin(last.Sequence);
                Event(buffer, "list", JsonSerializer.SerializeToUtf8Bytes(TailResponse(last, highlight), WebJsonContext.Default.FlowListResponse));
                await response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), token);
                await response.Body.FlushAsync(token);
            }

            while (await subscription.WaitAsync(token))
            {
                long skipped = 0;
                rows.Clear();
                tailRows.Clear();
                removed.Clear();
                bool cleared = false, intercept = false;
                long evicted = 0, removedInList = 0;
                while (rows.Count < MaxBatchRows && subscription.Reader.TryRead(out var item))
                {
                    switch (item.Kind)
                    {
                        case FeedItemKind.Row:
                            rows.Add(item.Row!);
                            break;
                        case FeedItemKind.Removed when item.Ids is null:
                            cleared = true;
                            rows.Clear();
                            removed.Clear();
                            evicted = removedInList = 0;
                            break;
                        case FeedItemKind.Evicted:
                            evicted += item.Count;
                            break;
                        case FeedItemKind.Removed:
                            removed.AddRange(item.Ids);
                            removedInList += item.Count;
                            break;
                        case FeedItemKind.Intercept:
                            intercept = true;
                            break;
                    }
                }

                buffer.SetLength(0);
                if (subscription.TakeOverflow())
                {
                    // Fell behind: what is queued is incomplete and was forgotten; the page reloads the list instead.
                    WebLog.SubscriberOverflow(_logger, context.Connection.RemoteIpAddress);
                    Event(buffer, "reload", "{}"u8);
                }
                else
                {
                    if (cleared)
                    {
                        Event(buffer, "cleared", "{}"u8);
                    }

                    if (rows.Count > 0 && !tail)
                    {
                        // New and changed rows in the order they came (a changed row replaces its row by id).
                        Event(buffer, "flows", JsonSerializer.SerializeToUtf8Bytes<IReadOnlyList<FlowSummary>>(rows, WebJsonContext.Default.IReadOnlyListFlowSummary));
                    }

                    if (cleared && tail)
                    {
                        // The ring cannot tell the flows before the clear from those after: the page reloads the list.
                        subscription.ClearTail();
                        Event(buffer, "reload", "{}"u8);
                    }

                    skipped = subscription.TakeTail(tailRows);
                    if (skipped > 0)
                    {
                        Event(buffer, "skipped", Encoding.UTF8.GetBytes(skipped.ToString(CultureInfo.InvariantCulture)));
                    }

                    if (tailRows.Count > 0)
                    {
                        Event(buffer, "flows", JsonSerializer.SerializeToUtf8Bytes<IReadOnlyList<FlowSummary>>(tailRows, WebJsonContext.Default.IReadOnlyListFlowSummary));
                    }

                    // After this push's new rows: a changed row may be one of them (the ring holds a new flow as it was
                    // first stored: a mark set since must come after it).
                    if (rows.Count > 0 && tail)
                    {
                        Event(buffer, "changed", JsonSerializer.SerializeToUtf8Bytes<IReadOnlyList<FlowSummary>>(rows, WebJsonContext.Default.IReadOnlyListFlowSummary));
                    }

                    // After this push's new rows: the oldest rows go, which may include some of those when more flows
                    // arrived since the last push than the store keeps; and a removed flow may be one of them.
                    if (evicted > 0)
                    {
                        Event(buffer, "evicted", Encoding.UTF8.GetBytes(evicted.ToString(CultureInfo.InvariantCulture)));
                    }

                    if (removed.Count > 0)
                    {
                        Event(buffer, "removed", JsonSerializer.SerializeToUtf8Bytes(new RemovedRows(removed, removedInList), WebJsonContext.Default.RemovedRows));
                    }

                    if (intercept)
                    {
                        Event(buffer, "intercept", "{}"u8);
                    }
                }

                await response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), token);
                await response.Body.FlushAsync(token);
                await Task.Delay(skipped > 0 ? BusyBatchInterval : BatchInterval, _options.TimeProvider, token);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The browser closed the stream, or the server is stopping: the subscription goes with it.
        }
        catch (IOException) when (token.IsCancellationRequested)
        {
        }

        static void Event(MemoryStream buffer, string name, ReadOnlySpan<byte> data)
        {
            // WHATWG HTML §9.2 (server-sent events): "event:" and one "data:" line (JSON has no raw newlines), then a blank line.
            buffer.Write(Encoding.UTF8.GetBytes("event: " + name + "\ndata: "));
            buffer.Write(data);
            buffer.Write("\n\n"u8);
        }
    }

    private Task InterceptStateAsync(HttpContext context)
    {
        if (_options.Intercept is not { } intercept)
        {
            return Error(context, 409, "intercept is available in interpose run --web");
        }

        var paused = intercept.Paused.Select(p =>
        {
            var exchange = p.Exchange;
            Proxy.HttpMessage message = p.Phase == InterceptPhase.Request ? exchange.Request : exchange.Response!;
            var body = message.Body;
            var isText = TryText(body.Span, out var text);
            return new PausedExchange(p.Key, p.Phase == InterceptPhase.Request ? "request" : "response", exchange.Request.Method,
                exchange.Request.Url.ToString(), exchange.Response?.StatusCode, p.PausedAt.ToUnixTimeMilliseconds(),
                Pairs(message.Headers), isText ? text : Convert.ToBase64String(body.Span), isText);
        }).ToList();
        return Json(context, new InterceptState(intercept.Filter?.ToString(), paused), WebJsonContext.Default.InterceptState);
    }

    private async Task SetInterceptFilterAsync(HttpContext context)
    {
        if (_options.Intercept is not { } intercept)
        {
            await Error(context, 409, "intercept is available in interpose run --web");
            return;
        }

        var update = await ReadJsonAsync(context, WebJsonContext.Default.InterceptFilterUpdate);
        intercept.Filter = ParseFilter(update.Filter);
        await InterceptStateAsync(context);
    }

    private async Task ResumeAsync(HttpContext context)
    {
        if (_options.Intercept is not { } intercept)
        {
            await Error(context, 409, "intercept is available in interpose run --web");
            return;
        }

        var key = (string)context.Request.RouteValues["key"]!;
        var edit = await ReadEditAsync(context);
        var change = edit is null ? null : new InterceptEdit
        {
            Method = edit.Method,
            Url = edit.Url,
            StatusCode = edit.Status,
            Headers = edit.Headers is { } headers ? HeaderPairs(headers) : null,
            Body = BodyOf(edit),
        };
        try
        {
            if (!intercept.Resume(key, change))
            {
                await Error(context, 404, "no exchange is paused under this key (resumed, killed or timed out)");
                return;
            }
        }
        catch (ArgumentException ex)
        {
            throw new BadInputException(ex.Message);
        }

        context.Response.StatusCode = 204;
    }

    private async Task KillAsync(HttpContext context)
    {
        if (_options.Intercept is not { } intercept)
        {
            await Error(context, 409, "intercept is available in interpose run --web");
            return;
        }

        if (!intercept.Kill((string)context.Request.RouteValues["key"]!))
        {
            await Error(context, 404, "no exchange is paused under this key (resumed, killed or timed out)");
            return;
        }

        context.Response.StatusCode = 204;
    }

    private static HttpRequestMessage ReplayRequest(HttpFlow flow, MessageEdit? edit)
    {
        var method = edit?.Method ?? flow.Request.Method;
        var url = edit?.Url ?? flow.Request.Url;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new BadInputException("url: not an absolute http or https URL");
        }

        // RFC 9110 §9.1: method = token (RFC 9110 §5.6.2: tchar only; no delimiters such as ( " / or :).
        if (!HttpChars.IsToken(method))
        {
            throw new BadInputException("method: not an HTTP method token (RFC 9110 §9.1)");
        }

        var request = new HttpRequestMessage(new HttpMethod(method), uri) { Version = HttpVersion.Version11 };
        var body = HasBody(edit) ? BodyOf(edit!)!.Value : flow.Request.Body.Content;
        var content = new ByteArrayContent(body.ToArray());
        var headers = edit?.Headers is { } edited ? HeaderPairs(edited) : flow.Request.Headers.Select(h => new KeyValuePair<string, string>(h.Name, h.Value)).ToList();
        foreach (var (name, value) in headers)
        {
            if (NotReplayed.Contains(name))
            {
                continue;
            }

            if (!request.Headers.TryAddWithoutValidation(name, value))
            {
                content.Headers.TryAddWithoutValidation(name, value);
            }
        }

        if (body.Length > 0 || content.Headers.Any())
        {
            request.Content = content;
        }
        else
        {
            content.Dispose();
        }

        return request;
    }

    /// <summary>Whether an edit replaces the body; without one the recorded body is sent as it is.</summary>
    private static bool HasBody(MessageEdit? edit) => edit is not null && (edit.Body is not null || edit.BodyBase64 is not null);

    private static ReadOnlyMemory<byte>? BodyOf(MessageEdit edit)
    {
        if (edit.BodyBase64 is { } base64)
        {
            try
            {
                return Convert.FromBase64String(base64);
            }
            catch (FormatException)
            {
                throw new BadInputException("bodyBase64: not base64");
            }
        }

        return edit.Body is { } text ? Encoding.UTF8.GetBytes(text) : null;
    }

    private static List<KeyValuePair<string, string>> HeaderPairs(IReadOnlyList<string[]> headers)
    {
        var pairs = new List<KeyValuePair<string, string>>(headers.Count);
        foreach (var header in headers)
        {
            if (header is not [{ Length: > 0 } name, { } value] || name.Any(c => c <= ' ' || c >= 127 || c == ':') || value.Any(c => c is '\r' or '\n' or '\0'))
            {
                throw new BadInputException("headers: each must be [name, value] with a token name and a value without CR, LF or NUL");
            }

            pairs.Add(new(name, value));
        }

        return pairs;
    }

    /// <summary>A recorded field value as a response field of this server: Kestrel refuses one with a character outside
    /// visible ASCII (RFC 9110 §5.5 leaves obs-text to a sender's discretion, and Kestrel does not send it), which answered
    /// 500. Those characters, and % itself, are percent-encoded as UTF-8 (RFC 3986 §2.1), which decodeURIComponent
    /// reverses; a value without them is sent as it is.</summary>
    private static string VisibleAscii(string value)
    {
        if (!value.Any(c => c is < ' ' or > '~' or '%'))
        {
            return value;
        }

        var escaped = new StringBuilder(value.Length * 3);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in value.EnumerateRunes())
        {
            if (rune.Value is >= ' ' and <= '~' and not '%')
            {
                escaped.Append((char)rune.Value);
                continue;
            }

            foreach (var b in utf8[..rune.EncodeToUtf8(utf8)])
            {
                escaped.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return escaped.ToString();
    }

    private static ReadOnlyMemory<byte> Content(FlowMessage message, bool decode, out bool decoded)
    {
        decoded = false;
        var content = message.Body.Content;
        if (decode && !message.Body.IsTruncated && message.Headers.Get("Content-Encoding") is { } encoding
            && ContentCoding.CanDecode(encoding) && ContentCoding.TryDecode(content, encoding, out var plain))
        {
            decoded = true;
            return plain;
        }

        return content;
    }

    /// <summary>How many WebSocket messages the details pane gets, and how many bytes of each: the page stays small
    /// whatever the socket carried (the rest is in `flows show` and the HAR export).</summary>
    private const int MaxWebSocketMessagesShown = 1_000;

    private const int MaxWebSocketPreviewBytes = 2_048;

    private static WebSocketDetails WebSocket(FlowWebSocket webSocket)
    {
        var shown = new List<WebSocketMessageDetails>(Math.Min(webSocket.Messages.Count, MaxWebSocketMessagesShown));
        foreach (var m in webSocket.Messages.Take(MaxWebSocketMessagesShown))
        {
            var preview = m.Content.Span[..Math.Min(m.Content.Length, MaxWebSocketPreviewBytes)];
            string? text = null;
            if (m.Opcode == WebSocketOpcode.Text && !m.IsCompressed)
            {
                try
                {
                    text = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(preview);
                }
                catch (System.Text.DecoderFallbackException)
                {
                    // A preview cut inside a character, or not UTF-8 after all: shown as hex.
                }
            }

            shown.Add(new WebSocketMessageDetails(m.FromClient, m.Opcode.ToString().ToLowerInvariant(), m.OffsetMs, m.Length,
                m.IsTruncated || preview.Length < m.Content.Length, m.IsCompressed, text, text is null ? Convert.ToHexStringLower(preview) : null));
        }

        return new WebSocketDetails(shown, webSocket.Messages.Count - shown.Count + webSocket.DroppedMessages,
            webSocket.CloseCode, webSocket.CloseReason, webSocket.ClosedByClient, webSocket.ParseError);
    }

    private static MessageDetails Message(FlowMessage message) => new(
        message.HttpVersion, Pairs(message.Headers), message.Trailers is { } t ? Pairs(t) : null,
        new BodyInfo(message.Body.Length, message.Body.Content.Length, message.Body.IsTruncated, message.Headers.Get("Content-Type"),
            message.Headers.Get("Content-Encoding"), message.Headers.Get("Content-Encoding") is not { } e || ContentCoding.CanDecode(e)));

    private static List<string[]> Pairs(HttpHeaders headers) => [.. headers.Select(h => new[] { h.Name, h.Value })];

    private static TlsDetails? Tls(FlowTls? tls) => tls is null ? null : new TlsDetails(tls.Version, tls.CipherSuite, tls.Alpn, tls.Sni, [.. tls.CertificateChain.Select(Certificate)]);

    private static CertificateDetails Certificate(byte[] der)
    {
        try
        {
            using var certificate = X509CertificateLoader.LoadCertificate(der);
            var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateDnsNames()).ToList();
            return new CertificateDetails(certificate.Subject, certificate.Issuer, certificate.NotBefore.ToUniversalTime().ToString("u", CultureInfo.InvariantCulture),
                certificate.NotAfter.ToUniversalTime().ToString("u", CultureInfo.InvariantCulture), Convert.ToHexStringLower(SHA256.HashData(der)), names);
        }
        catch (CryptographicException)
        {
            return new CertificateDetails("(unreadable certificate)", "", "", "", Convert.ToHexStringLower(SHA256.HashData(der)), []);
        }
    }

    private static bool TryText(ReadOnlySpan<byte> body, out string text)
    {
        try
        {
            text = StrictUtf8.GetString(body);
            return !text.Contains('\0', StringComparison.Ordinal);
        }
        catch (DecoderFallbackException)
        {
            text = "";
            return false;
        }
    }

    /// <summary>Whether a highlight (or none) reads bodies: the rows it colours are then read with theirs.</summary>
    private static bool ReadsBodies(FlowFilter? highlight) => highlight is not null && Proxy.Rules.RulesAddon.ReadsBodies(highlight.Root);

    private async Task<bool> WritableAsync(HttpContext context)
    {
        if (!_options.ReadOnly)
        {
            return true;
        }

        await Error(context, 403, "read-only: this UI shows a saved file (interpose web)");
        return false;
    }

    private static Guid? ParseId(HttpContext context) =>
        Guid.TryParse((string?)context.Request.RouteValues["id"], out var id) ? id : throw new BadInputException("id: not a flow id (a GUID)");

    private async Task<Flow?> FindAsync(HttpContext context, bool bodies = true)
    {
        _ = bodies;
        var id = ParseId(context)!.Value;
        var flow = await _store.GetAsync(id, context.RequestAborted);
        if (flow is null)
        {
            await Error(context, 404, "no such flow");
        }

        return flow;
    }

    private async Task<(Flow? Flow, FlowMessage? Message)> FindMessageAsync(HttpContext context)
    {
        var side = (string)context.Request.RouteValues["side"]!;
        if (side is not ("request" or "response"))
        {
            throw new BadInputException("side: request or response");
        }

        if (await FindAsync(context) is not { } flow)
        {
            return (null, null);
        }

        if (flow is not HttpFlow http || (side == "request" ? http.Request as FlowMessage : http.Response) is not { } message)
        {
            await Error(context, 404, "the flow has no " + side);
            return (flow, null);
        }

        return (flow, message);
    }

    private static FlowFilter? ParseFilter(string? text, string name = "filter")
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        try
        {
            return FlowFilter.Parse(text);
        }
        catch (FilterSyntaxException ex)
        {
            throw new BadInputException(name + ": " + ex.Message, ex.Position);
        }
    }

    private static int? ParseInt(string? text, string name, int min, int max)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new BadInputException($"{name}: a whole number from {min} to {max}");
    }

    /// <summary>The edit a replay or resume was sent with, or null when it has no body (an empty body is no edit). The
    /// body is read whatever its framing: a Content-Length, chunked (RFC 9112 §7.1: what .NET's PostAsJsonAsync and a
    /// streamed fetch send) or HTTP/2 DATA frames; Kestrel's MaxRequestBodySize (<see cref="MaxRequestBodyBytes"/>)
    /// answers 413 past it, for every framing.</summary>
    private static async Task<MessageEdit?> ReadEditAsync(HttpContext context)
    {
        // Peek: a request without a body, or with an empty one, reads as completed with nothing in it.
        var reader = context.Request.BodyReader;
        var first = await reader.ReadAsync(context.RequestAborted);
        var empty = first.Buffer.IsEmpty && first.IsCompleted;
        reader.AdvanceTo(first.Buffer.Start);
        return empty ? null : await ReadJsonAsync(context, WebJsonContext.Default.MessageEdit);
    }

    private static async Task<T> ReadJsonAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo)
        where T : class
    {
        if (!context.Request.HasJsonContentType())
        {
            throw new BadInputException("the body must be JSON (Content-Type: application/json)");
        }

        try
        {
            return await JsonSerializer.DeserializeAsync(context.Request.Body, typeInfo, context.RequestAborted)
                ?? throw new BadInputException("the body must be a JSON object, not null");
        }
        catch (JsonException ex)
        {
            throw new BadInputException("the body is not the expected JSON: " + ex.Message);
        }
    }

    private static async Task Json<T>(HttpContext context, T value, JsonTypeInfo<T> typeInfo)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(context.Response.Body, value, typeInfo, context.RequestAborted);
    }

    private static Task Error(HttpContext context, int status, string reason, int? position = null)
    {
        if (context.Response.HasStarted)
        {
            return Task.CompletedTask;
        }

        context.Response.StatusCode = status;
        return Json(context, new ApiError(reason, position), WebJsonContext.Default.ApiError);
    }

    /// <summary>Malformed input: answered 400 with the message (and the filter position, for a filter).</summary>
    private sealed class BadInputException(string message, int? position = null) : Exception(message)
    {
        public int? Position { get; } = position;
    }
}
