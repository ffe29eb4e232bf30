using System.Diagnostics;
using System.Globalization;

namespace Interpose.Proxy.Internal;

/// <summary>
/// One activity per exchange on the <see cref="ActivitySource"/> named <see cref="ProxyServer.ActivitySourceName"/>,
/// following OpenTelemetry's HTTP semantic conventions (https://opentelemetry.io/docs/specs/semconv/http/http-spans/):
/// a server span for the client's side and, when the request goes to an origin, a child client span for the origin's.
/// </summary>
/// <remarks>
/// Nothing is injected into the forwarded traffic: no <c>traceparent</c> is added or changed (faithful first). A
/// <c>traceparent</c> the client sent is read (W3C Trace Context §3.2) to parent the server span, and forwarded as it
/// came. Without a listener <see cref="ActivitySource.HasListeners"/> is false and nothing is allocated.
/// </remarks>
internal static class ExchangeTracing
{
    public static readonly ActivitySource Source = new(ProxyServer.ActivitySourceName, typeof(ExchangeTracing).Assembly.GetName().Version?.ToString(3));

    /// <summary>The server span, started when the request head arrived; null without a listener.</summary>
    public static Activity? StartServer(ProxyRuntime runtime, HttpExchange exchange)
    {
        if (!runtime.Traced || !Source.HasListeners())
        {
            return null;
        }

        var request = exchange.Request;
        ActivityContext.TryParse(request.Headers.Get("traceparent"), request.Headers.Get("tracestate"), isRemote: true, out var parent);
        var activity = Source.StartActivity(SpanName(request.Method), ActivityKind.Server, parent);
        if (activity is { IsAllDataRequested: true })
        {
            SetRequest(activity, request);
            activity.SetTag("url.scheme", request.Scheme);
            activity.SetTag("network.protocol.version", ProtocolVersion(exchange.ClientVersion));
            if (exchange.Client.RemoteEndPoint is System.Net.IPEndPoint client)
            {
                activity.SetTag("client.address", client.Address.ToString());
            }
        }

        return activity;
    }

    /// <summary>The client span for the origin's side, a child of the server span; null without a listener.</summary>
    public static Activity? StartClient(Activity? server, HttpExchange exchange)
    {
        if (server is null)
        {
            return null;
        }

        var activity = Source.StartActivity(SpanName(exchange.Request.Method), ActivityKind.Client, server.Context);
        if (activity is { IsAllDataRequested: true })
        {
            SetRequest(activity, exchange.Request);
        }

        return activity;
    }

    /// <summary>Ends the client span with the origin's answer or the failure.</summary>
    public static void StopClient(Activity? activity, HttpExchange exchange)
    {
        if (activity is null)
        {
            return;
        }

        if (exchange.ServerVersion is { } version)
        {
            activity.SetTag("network.protocol.version", ProtocolVersion(version));
        }

        // Semantic conventions: for a client span, a 4xx or 5xx status is an error.
        Stop(activity, exchange, errorFrom: 400);
    }

    /// <summary>Ends the server span with the status sent to the client or the failure.</summary>
    public static void StopServer(Activity? activity, HttpExchange exchange)
    {
        if (activity is null)
        {
            return;
        }

        // Semantic conventions: for a server span, only a 5xx status is an error (a 4xx is the client's).
        Stop(activity, exchange, errorFrom: 500);
    }

    private static void Stop(Activity activity, HttpExchange exchange, int errorFrom)
    {
        string? errorType = null;
        if (exchange.Error is { } error)
        {
            errorType = error.Phase.ToString().ToLowerInvariant();
        }
        else if (exchange.IsKilled)
        {
            errorType = "killed";
        }
        else if (exchange.Response is { } response)
        {
            activity.SetTag("http.response.status_code", response.StatusCode);
            if (response.StatusCode >= errorFrom)
            {
                errorType = response.StatusCode.ToString(CultureInfo.InvariantCulture);
            }
        }

        if (errorType is not null)
        {
            activity.SetTag("error.type", errorType);
            activity.SetStatus(ActivityStatusCode.Error, exchange.Error?.Message);
        }

        activity.Stop();
    }

    private static void SetRequest(Activity activity, HttpRequest request)
    {
        var method = KnownMethod(request.Method);
        activity.SetTag("http.request.method", method ?? "_OTHER");
        if (method is null)
        {
            activity.SetTag("http.request.method_original", request.Method);
        }

        activity.SetTag("url.full", request.Scheme + "://" + request.Authority + request.Path);
        activity.SetTag("server.address", request.Host);
        activity.SetTag("server.port", request.Port);
    }

    // Semantic conventions: the span name is the method, or HTTP for a method outside the known set.
    private static string SpanName(string method) => KnownMethod(method) ?? "HTTP";

    // The methods of RFC 9110 §9 and PATCH (RFC 5789): the conventions' known set; others are _OTHER.
    private static string? KnownMethod(string method) => method switch
    {
        "GET" or "HEAD" or "POST" or "PUT" or "DELETE" or "CONNECT" or "OPTIONS" or "TRACE" or "PATCH" => method,
        _ => null,
    };

    // Semantic conventions: network.protocol.version is 1.0, 1.1, 2 or 3.
    private static string ProtocolVersion(Version version) => version.Major >= 2 ? version.Major.ToString(CultureInfo.InvariantCulture) : version.ToString(2);
}
