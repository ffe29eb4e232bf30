using Interpose.Core.Flows;

namespace Interpose.Store;

/// <summary>
/// What a store tells a live view (the web UI's list): the flows it made readable and the flows it evicted, each with
/// its sequence. A store that takes an observer numbers the flows it appends 1, 2, 3, ... in the order it keeps them,
/// and never gives a number twice while it is open; its <see cref="IFlowStore.TailAsync"/> says which sequence its
/// snapshot reached. A view that is subscribed before it takes the snapshot then knows exactly which of the flows it is
/// told about the snapshot already has: those numbered up to the snapshot's sequence.
/// </summary>
/// <remarks>
/// The calls come once the flows are readable (committed, for <see cref="SqliteFlowStore"/>), one at a time and in the
/// order of the sequences, on the thread that wrote them. The writer waits for each call: an observer queues what it
/// has to do and returns, and never calls the store.
/// </remarks>
public interface IFlowStoreObserver
{
    /// <summary>Flows that became readable, in the order of their sequences: new ones, and ones appended again.</summary>
    /// <param name="flows">The flows.</param>
    void Stored(IReadOnlyList<SequencedFlow> flows);

    /// <summary>Flows the store evicted past its caps (oldest first: the first of every list in the store's order).</summary>
    /// <param name="flows">The evicted flows. A store may decode each only when it is read, and only during the call.</param>
    /// <param name="evictedBy">For each flow, the sequence of the append that evicted it: a snapshot whose sequence is at
    /// least that no longer has the flow.</param>
    void Evicted(IReadOnlyList<Flow> flows, IReadOnlyList<long> evictedBy);
}

/// <summary>A flow a store made readable.</summary>
/// <param name="Flow">The flow.</param>
/// <param name="Sequence">Its number in the store's order.</param>
/// <param name="Replaced">It was stored before and was appended again (a mark, a comment): it kept its place and its
/// sequence.</param>
public readonly record struct SequencedFlow(Flow Flow, long Sequence, bool Replaced);

/// <summary>The last flows of a list and their position in it, read at one moment (<see cref="IFlowStore.TailAsync"/>).</summary>
/// <param name="Offset">The position of the first of <paramref name="Flows"/> among the flows the filter selects.</param>
/// <param name="Flows">The last flows the filter selects, in the store's order.</param>
/// <param name="Total">How many flows the filter selects.</param>
/// <param name="Sequence">The sequence of the newest flow the store held at that moment (0 when it held none): flows
/// told to an <see cref="IFlowStoreObserver"/> with a higher one are not in this list. Null for a store that does not
/// number its flows; its count and flows may then come from two moments.</param>
public sealed record FlowTail(long Offset, IReadOnlyList<Flow> Flows, long Total, long? Sequence);
