using System.Text.Json.Serialization;
using Interpose.Core.Filters;

namespace Interpose.Core.Flows;

/// <summary>
/// One thing that went through the proxy, as recorded: an HTTP exchange (<see cref="HttpFlow"/>) or a tunnel relayed
/// without interception (<see cref="TunnelFlow"/>). Flows are values: built once when the exchange or tunnel ended,
/// then handed to sinks, stores and exporters, which must not change them.
/// </summary>
/// <remarks>
/// A WebSocket connection is an <see cref="HttpFlow"/> whose response is a 101, with its messages in
/// <see cref="HttpFlow.WebSocket"/>; its filter view exposes them as <see cref="IFilterableFlow.Messages"/> and HAR
/// export writes them as Chromium's <c>_webSocketMessages</c>.
/// </remarks>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(HttpFlow), "http")]
[JsonDerivedType(typeof(TunnelFlow), "tunnel")]
public abstract record Flow
{
    /// <summary>A unique id (version 7: ordered by creation time), stable across stores and exports.</summary>
    public required Guid Id { get; init; }

    /// <summary>The wall-clock time the flow started (the request head arrived, or the tunnel opened).</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>The client's address, when known.</summary>
    public FlowEndpoint? Client { get; init; }

    /// <summary>The address the proxy connected to for this flow, when it connected anywhere.</summary>
    public FlowEndpoint? Server { get; init; }

    /// <summary>Why the flow failed, if it did.</summary>
    public FlowError? Error { get; init; }

    /// <summary>Free-form tags set by addons or users (names compared ordinally).</summary>
    public IReadOnlyDictionary<string, string> Tags { get; init; } = EmptyTags;

    /// <summary>mitmproxy's marker: non-empty when the flow is marked (<c>~marked</c>), for example an emoji.</summary>
    public string? Marker { get; init; }

    /// <summary>A user's comment on the flow (<c>~comment</c>).</summary>
    public string? Comment { get; init; }

    /// <summary>Whether and how the flow was replayed.</summary>
    public FilterReplayKind Replay { get; init; }

    /// <summary>A view of the flow for <see cref="FlowFilter.Matches"/>.</summary>
    /// <returns>The view; it decodes bodies lazily, once.</returns>
    public abstract IFilterableFlow AsFilterable();

    private static readonly IReadOnlyDictionary<string, string> EmptyTags = new Dictionary<string, string>(StringComparer.Ordinal);
}
