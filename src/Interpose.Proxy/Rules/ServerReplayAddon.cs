using System.Net;
using System.Security.Cryptography;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Proxy.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Proxy.Rules;

/// <summary>
/// Server replay (mitmproxy's <c>server_replay</c>, <c>interpose run -S FILE</c>): a request that matches a recorded
/// flow is answered with that flow's response (status, reason, header fields in recorded order, body as recorded,
/// trailers) without contacting the origin. Requests that match nothing follow <see cref="ServerReplayOptions.Extra"/>.
/// </summary>
/// <remarks>
/// <para>Matching is <see cref="ServerReplayOptions"/>'s key. Flows sharing a key are served once each, in recorded
/// order; with <see cref="ServerReplayOptions.Reuse"/> the last one keeps being served (mitmproxy's reuse serves the
/// first one again; serving them in order, then the last, replays a sequence such as a login then a page).</para>
/// <para>A recorded response whose body was cut at the recording cap (or dropped under load), or ended early because
/// the exchange failed mid-body, is not replayed as if it were whole: the client gets a 502 saying so, and the origin is still not contacted (a replay must not reach out
/// behind the user's back; record again with a larger <c>--save-body-limit</c>).</para>
/// <para>Replayed exchanges carry the tag <see cref="Tag"/> (the recorded flow's id), which the recorder turns into
/// mitmproxy's <c>is_replay = "response"</c> (<c>~replays</c>) and the flow log shows. Unmatched requests that were
/// killed or answered carry <see cref="ExtraTag"/>.</para>
/// <para>The flows are loaded into memory once, indexed by key, bounded by <see cref="ServerReplayOptions.MaxFlows"/>
/// and <see cref="ServerReplayOptions.MaxBodyBytes"/>; only what an answer needs is kept (the response and the
/// request's key). The addon is safe to share between connections.</para>
/// </remarks>
public sealed class ServerReplayAddon : ProxyAddon
{
    /// <summary>The tag on a replayed exchange; its value is the id of the recorded flow that answered.</summary>
    public const string Tag = "server-replay";

    /// <summary>The tag on an unmatched exchange that was killed or answered (<c>kill</c> or the status).</summary>
    public const string ExtraTag = "server-replay-extra";

    private readonly ServerReplayOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<ServerReplayKey, Queue<HttpFlow>> _index = [];
    private readonly Lock _gate = new();
    private int _loaded;
    private long _loadedBodyBytes;

    /// <summary>Indexes the replayable flows of <paramref name="flows"/>: HTTP flows with a final response.</summary>
    /// <param name="flows">The recorded flows, with their bodies (e.g. an <c>IFlowStore</c> query with
    /// <c>IncludeBodies</c>), in recorded order.</param>
    /// <param name="options">Matching and bounds; the defaults when null.</param>
    /// <param name="logger">Where misses and cut bodies are logged; nowhere when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    /// <exception cref="InvalidDataException">More flows or body bytes than the options' bounds.</exception>
    public ServerReplayAddon(IEnumerable<Flow> flows, ServerReplayOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(flows);
        _options = options ?? new ServerReplayOptions();
        _logger = logger ?? NullLogger.Instance;
        foreach (var flow in flows)
        {
            Add(flow);
        }
    }

    /// <summary>Loads the replayable flows of <paramref name="flows"/> (for example <c>store.QueryAsync(new FlowQuery {
    /// IncludeBodies = true })</c> of an <c>IFlowStore</c>) into a new addon.</summary>
    /// <param name="flows">The recorded flows, with their bodies, in recorded order.</param>
    /// <param name="options">Matching and bounds; the defaults when null.</param>
    /// <param name="logger">Where misses and cut bodies are logged; nowhere when null.</param>
    /// <param name="cancellationToken">Abandons the load.</param>
    /// <returns>The addon.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    /// <exception cref="InvalidDataException">More flows or body bytes than the options' bounds.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<ServerReplayAddon> LoadAsync(IAsyncEnumerable<Flow> flows, ServerReplayOptions? options = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flows);
        var addon = new ServerReplayAddon([], options, logger);
        await foreach (var flow in flows.WithCancellation(cancellationToken))
        {
            addon.Add(flow);
        }

        return addon;
    }

    /// <summary>How many recorded responses are left to serve (a reused last one counts once).</summary>
    public int Remaining
    {
        get
        {
            lock (_gate)
            {
                return _index.Values.Sum(q => q.Count);
            }
        }
    }

    /// <inheritdoc/>
    public override string Name => "server-replay";

    /// <summary>Asks for the request body whole when it is part of the match.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Not used.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="exchange"/> is null.</exception>
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (!_options.IgnoreContent && exchange.Response is null)
        {
            exchange.Request.BufferBody = true;
        }

        return default;
    }

    /// <summary>Answers the request from the recording, or applies <see cref="ServerReplayOptions.Extra"/>.</summary>
    /// <param name="exchange">The exchange.</param>
    /// <param name="cancellationToken">Not used.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="exchange"/> is null.</exception>
    public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (exchange.Response is not null || exchange.IsKilled)
        {
            return default;
        }

        var request = exchange.Request;
        var hash = _options.IgnoreContent || !request.HasBody ? null : Convert.ToHexStringLower(SHA256.HashData(request.Body.Span));
        var key = ServerReplayKey.Create(_options, request.Method, request.Scheme, request.Host, request.Port, request.Path, hash);
        var url = request.Scheme + "://" + request.Authority + request.Path;
        if (Next(key) is not { } flow)
        {
            ProxyLog.ServerReplayMiss(_logger, request.Method, url, _options.Extra);
            if (_options.Extra.IsKill)
            {
                exchange.Tags[ExtraTag] = "kill";
                exchange.Kill();
            }
            else if (!_options.Extra.IsForward)
            {
                exchange.Tags[ExtraTag] = _options.Extra.ToString();
                exchange.Respond(new HttpResponse(_options.Extra.StatusCode));
            }

            return default;
        }

        exchange.Tags[Tag] = flow.Id.ToString();
        var recorded = flow.Response!;
        if (!recorded.Body.IsWhole)
        {
            // A body cut at the cap, or one that ended early because the exchange failed mid-body (its Length then counts
            // only the bytes that passed, so it is not IsTruncated): either replayed as is would be a clean answer made
            // from a part (docs/security.md, "Server replay never invents a body").
            var why = recorded.Body.IsTruncated
                ? $"kept {recorded.Body.Content.Length} of its {recorded.Body.Length} body bytes (cut at the recording's --save-body-limit, or dropped under load)"
                : $"ended after {recorded.Body.Length} body bytes (the exchange failed mid-body{(flow.Error is { } error ? ": " + error.Phase + ", " + error.Message : string.Empty)})";
            ProxyLog.ServerReplayTruncated(_logger, request.Method, url, flow.Id, why);
            exchange.Respond(HttpResponse.Text(502, $"Interpose server replay: the recorded response of flow {flow.Id} {why}; it is not replayed as if whole\n"));
            return default;
        }

        exchange.Respond(ToResponse(recorded));
        return default;
    }

    /// <summary>Adds a flow to the index if it can be replayed.</summary>
    private void Add(Flow flow)
    {
        // mitmproxy's load_flows keeps only flows with a response; a 1xx (a 101 upgrade) cannot be replayed as an answer.
        if (flow is not HttpFlow { Response: { StatusCode: >= 200 } response } http)
        {
            return;
        }

        var request = http.Request;
        var key = ServerReplayKey.Create(_options, request.Method, request.Scheme, request.Host, request.Port, request.Path, request.Body.Sha256);
        lock (_gate)
        {
            if (++_loaded > _options.MaxFlows)
            {
                throw new InvalidDataException($"more than {_options.MaxFlows} replayable flows (server replay holds them in memory)");
            }

            _loadedBodyBytes += response.Body.Content.Length;
            if (_loadedBodyBytes > _options.MaxBodyBytes)
            {
                throw new InvalidDataException($"more than {_options.MaxBodyBytes} bytes of response bodies (server replay holds them in memory)");
            }

            if (!_index.TryGetValue(key, out var queue))
            {
                _index[key] = queue = new Queue<HttpFlow>();
            }

            // Only what an answer needs: the request is the key, and its body is no longer needed.
            queue.Enqueue(http with { Request = request with { Body = request.Body.WithoutContent() } });
        }
    }

    /// <summary>The flow to answer with: the next one of its key, or with reuse the last one again; null for none.</summary>
    private HttpFlow? Next(ServerReplayKey key)
    {
        lock (_gate)
        {
            if (!_index.TryGetValue(key, out var queue) || queue.Count == 0)
            {
                return null;
            }

            if (queue.Count == 1 && _options.Reuse)
            {
                return queue.Peek();
            }

            var next = queue.Dequeue();
            if (queue.Count == 0)
            {
                _index.Remove(key);
            }

            return next;
        }
    }

    private static HttpResponse ToResponse(FlowResponse recorded)
    {
        var headers = Copy(recorded.Headers);
        // The recorded version is not replayed: the answer is the proxy's, sent in the client's protocol as any addon's
        // answer is, so it carries the version HttpResponse.Version allows such an answer (HTTP/1.1). An HTTP/2 origin's
        // recording says "HTTP/2.0", which no response a hook can build has, and which the recorder would have written
        // for an exchange that was answered in HTTP/1.1. Status and reason phrase are the recording's: those the client
        // cannot be sent are refused with a 502 by the pipeline's last check before the head goes out.
        var response = new HttpResponse(recorded.StatusCode, recorded.Reason.Length > 0 ? recorded.Reason : ReasonPhrases.For(recorded.StatusCode), HttpVersion.Version11, headers);
        response.SetBody(recorded.Body.Content);
        if (recorded.Trailers is { Count: > 0 } trailers)
        {
            response.Trailers = Copy(trailers);
        }

        return response;
    }

    // Each answer gets its own copy: the proxy fixes framing fields in the response it sends.
    private static HttpHeaders Copy(HttpHeaders fields)
    {
        var copy = new HttpHeaders(fields.Count);
        foreach (var field in fields)
        {
            copy.Add(field.Name, field.Value);
        }

        return copy;
    }
}
