using Interpose.Core.Flows;

namespace Interpose.Store.Tests;

/// <summary>An observer that hands what it is told to the test's delegates.</summary>
internal sealed class DelegateObserver(Action<IReadOnlyList<Flow>, IReadOnlyList<long>>? evicted = null, Action<IReadOnlyList<SequencedFlow>>? stored = null) : IFlowStoreObserver
{
    public void Stored(IReadOnlyList<SequencedFlow> flows) => stored?.Invoke(flows);

    public void Evicted(IReadOnlyList<Flow> flows, IReadOnlyList<long> evictedBy) => evicted?.Invoke(flows, evictedBy);
}
