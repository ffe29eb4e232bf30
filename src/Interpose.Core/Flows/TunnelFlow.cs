using Interpose.Core.Filters;

namespace Interpose.Core.Flows;

/// <summary>A tunnel relayed as bytes, not intercepted: its endpoints, how many bytes went each way, how long it lasted.</summary>
public sealed record TunnelFlow : Flow
{
    /// <summary>How the bytes were relayed.</summary>
    public required TunnelKind Kind { get; init; }

    /// <summary>The host the client asked to reach (the CONNECT authority's host).</summary>
    public required string Host { get; init; }

    /// <summary>The port the client asked to reach.</summary>
    public required int Port { get; init; }

    /// <summary>The server name of the client's ClientHello, for TLS passed through.</summary>
    public string? Sni { get; init; }

    /// <summary>Bytes relayed from the client to the server.</summary>
    public long BytesFromClient { get; init; }

    /// <summary>Bytes relayed from the server to the client.</summary>
    public long BytesFromServer { get; init; }

    /// <summary>How long the tunnel was open, in milliseconds; null when unknown.</summary>
    public double? DurationMs { get; init; }

    /// <inheritdoc/>
    public override IFilterableFlow AsFilterable() => new TunnelFlowFilterView(this);
}
