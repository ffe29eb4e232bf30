using Interpose.Core.Filters;
using Interpose.Core.Flows;

namespace Interpose.Store;

/// <summary>
/// Flows that answer a filter without being decoded when the filter reads only what the list keeps of them: what
/// <see cref="MemoryFlowStore"/>'s observer gets as the evicted flows, so that a browser's filter on the list's fields (<c>~u</c>,
/// <c>~c</c>, <c>~m</c>, ...) counts evicted flows without decoding each one (docs/performance.md, "Web UI").
/// </summary>
internal interface IFilterableFlowList : IReadOnlyList<Flow>
{
    /// <summary>Whether the flow at <paramref name="index"/> matches <paramref name="filter"/>.</summary>
    /// <param name="index">The flow's position in the list.</param>
    /// <param name="filter">The filter.</param>
    /// <returns>True when it matches.</returns>
    /// <exception cref="System.Text.RegularExpressions.RegexMatchTimeoutException">The filter's pattern ran past its
    /// time limit.</exception>
    /// <exception cref="InvalidOperationException">The flow must be decoded and can no longer be (after the callback).</exception>
    bool Matches(int index, FlowFilter filter);

    /// <summary>
    /// A copy of the list that stays readable after the observer's call returns, made during the call: each flow's record
    /// copied as bytes, not decoded. A reader that filters the flows later (a browser's push loop) takes this, so that
    /// neither the decoding nor the filter runs on the store's call.
    /// </summary>
    /// <returns>The copy; it answers <see cref="Matches"/> as this list does, and decodes a flow when it is read.</returns>
    /// <exception cref="ObjectDisposedException">The observer's call returned: the records may be gone.</exception>
    IFilterableFlowList Detach();
}
