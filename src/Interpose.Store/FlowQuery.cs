using Interpose.Core.Filters;

namespace Interpose.Store;

/// <summary>What <see cref="IFlowStore.QueryAsync"/> returns.</summary>
public sealed record FlowQuery
{
    /// <summary>The flows to return; all when null.</summary>
    public FlowFilter? Filter { get; init; }

    /// <summary>Whether the flows carry their recorded body bytes. Without them a flow's bodies keep their length and
    /// hash (<see cref="Interpose.Core.Flows.FlowBody.WithoutContent"/>), which is all a list needs and much less to read.
    /// A filter that looks into bodies (<c>~b</c>, <c>~bq</c>, <c>~bs</c>) reads them either way.</summary>
    public bool IncludeBodies { get; init; }

    /// <summary>The most flows to return; all when null.</summary>
    public int? Limit { get; init; }

    /// <summary>How many matching flows to skip first (a page of a list by position); 0 or more.</summary>
    public int Offset { get; init; }
}
