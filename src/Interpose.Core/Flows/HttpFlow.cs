using Interpose.Core.Filters;

namespace Interpose.Core.Flows;

/// <summary>One recorded HTTP exchange: request, response (when one came), timings, TLS of both sides, error.</summary>
public sealed record HttpFlow : Flow
{
    /// <summary>The request as the client sent it (after no hook; the proxy records the received request's head and
    /// the body as it was relayed).</summary>
    public required FlowRequest Request { get; init; }

    /// <summary>The response, when one was received or made by a hook; null otherwise.</summary>
    public FlowResponse? Response { get; init; }

    /// <summary>The HTTP version the client spoke (<c>HTTP/1.1</c>, <c>HTTP/2.0</c>).</summary>
    public required string ClientHttpVersion { get; init; }

    /// <summary>The HTTP version spoken with the origin; null when no origin answered.</summary>
    public string? ServerHttpVersion { get; init; }

    /// <summary>The exchange's stream on the client connection (HTTP/2 stream id; 1, 3, 5, ... for HTTP/1.1).</summary>
    public int StreamId { get; init; } = 1;

    /// <summary>An id of the client connection, shared by the flows that came over it (HAR's <c>connection</c> names the
    /// origin connection instead: <see cref="ServerConnectionId"/>).</summary>
    public string? ClientConnectionId { get; init; }

    /// <summary>An id of the origin connection used, shared by the flows that reused it; null without one.</summary>
    public string? ServerConnectionId { get; init; }

    /// <summary>True when a hook answered instead of the origin.</summary>
    public bool IsSynthetic { get; init; }

    /// <summary>When each step happened.</summary>
    public FlowTimings Timings { get; init; } = FlowTimings.Unknown;

    /// <summary>The TLS session with the client, when intercepted.</summary>
    public FlowTls? ClientTls { get; init; }

    /// <summary>The TLS session with the origin, when it used TLS.</summary>
    public FlowTls? ServerTls { get; init; }

    /// <summary>The WebSocket's messages, when the origin accepted a WebSocket upgrade and they were recorded; null otherwise.</summary>
    public FlowWebSocket? WebSocket { get; init; }

    /// <inheritdoc/>
    public override IFilterableFlow AsFilterable() => new HttpFlowFilterView(this);
}
