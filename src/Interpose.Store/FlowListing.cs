using Interpose.Core.Flows;

namespace Interpose.Store;

/// <summary>
/// What a list of flows shows of one flow (<c>interpose flows list</c>, one line like the flow log): read by
/// <see cref="IFlowStore.ListAsync"/> from a store's columns, without decoding the stored flow.
/// </summary>
/// <param name="Id">The flow's id.</param>
/// <param name="StartedAt">When the flow started.</param>
/// <param name="IsHttp">True for an <see cref="HttpFlow"/>, false for a <see cref="TunnelFlow"/>.</param>
public sealed record FlowListing(Guid Id, DateTimeOffset StartedAt, bool IsHttp)
{
    /// <summary>The client's address (<see cref="FlowEndpoint.ToString"/>), when known.</summary>
    public string? Client { get; init; }

    /// <summary>The server's address, when the proxy connected anywhere.</summary>
    public string? Server { get; init; }

    /// <summary>The request method (HTTP only).</summary>
    public string? Method { get; init; }

    /// <summary>The request URL (HTTP only).</summary>
    public string? Url { get; init; }

    /// <summary>The response's status code; null without a response.</summary>
    public int? StatusCode { get; init; }

    /// <summary>The step that failed (<see cref="FlowError.Phase"/>), if the flow failed.</summary>
    public string? ErrorPhase { get; init; }

    /// <summary>Why the flow failed (<see cref="FlowError.Message"/>), if it did.</summary>
    public string? ErrorMessage { get; init; }

    /// <summary>The whole response body's length (HTTP), or the bytes from the server (tunnel); null without a
    /// response.</summary>
    public long? ResponseBytes { get; init; }

    /// <summary>The bytes from the client (tunnel only).</summary>
    public long? RequestBytes { get; init; }

    /// <summary>How long the exchange or tunnel lasted in milliseconds, when known.</summary>
    public double? DurationMs { get; init; }

    /// <summary>How a tunnel was relayed (tunnel only).</summary>
    public TunnelKind? TunnelKind { get; init; }

    /// <summary>The host a tunnel went to (tunnel only).</summary>
    public string? TunnelHost { get; init; }

    /// <summary>The port a tunnel went to (tunnel only).</summary>
    public int? TunnelPort { get; init; }

    /// <summary>The listing of <paramref name="flow"/>: what a store keeps in its columns.</summary>
    /// <param name="flow">The flow.</param>
    /// <returns>The listing.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    public static FlowListing From(Flow flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        var listing = new FlowListing(flow.Id, flow.StartedAt, flow is HttpFlow)
        {
            Client = flow.Client?.ToString(),
            Server = flow.Server?.ToString(),
            ErrorPhase = flow.Error?.Phase,
            ErrorMessage = flow.Error?.Message,
        };
        return flow switch
        {
            HttpFlow http => listing with
            {
                Method = http.Request.Method,

                // The filter's URL (the Host header's authority where the request line had none), as the flow log.
                Url = http.AsFilterable().Url,
                StatusCode = http.Response?.StatusCode,
                ResponseBytes = http.Response?.Body.Length,
                DurationMs = http.Timings.Done,
            },
            TunnelFlow tunnel => listing with
            {
                ResponseBytes = tunnel.BytesFromServer,
                RequestBytes = tunnel.BytesFromClient,
                DurationMs = tunnel.DurationMs,
                TunnelKind = tunnel.Kind,
                TunnelHost = tunnel.Host,
                TunnelPort = tunnel.Port,
            },
            _ => listing,
        };
    }
}
