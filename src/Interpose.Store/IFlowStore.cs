using Interpose.Core.Filters;
using Interpose.Core.Flows;

namespace Interpose.Store;

/// <summary>
/// A searchable collection of recorded flows: append in batches, get one by id, query and count with the filter
/// language, delete. <see cref="SqliteFlowStore"/> keeps them in one SQLite file; an embedder can plug in another
/// (a shared database when several proxies record together).
/// </summary>
/// <remarks>Flows come back in the order they were appended. Implementations serialize their own calls; a caller
/// need not.</remarks>
public interface IFlowStore : IAsyncDisposable
{
    /// <summary>Appends <paramref name="flows"/> in one transaction: after the call returns, all of them are stored, or
    /// (when it throws) none.</summary>
    /// <param name="flows">The flows; an id already in the store is replaced.</param>
    /// <param name="cancellationToken">Abandons the call before the transaction commits.</param>
    /// <returns>A task that completes when the batch is committed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flows"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The store was opened read-only.</exception>
    /// <exception cref="IOException">The batch could not be written (a full disk, a read-only file).</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    ValueTask AppendAsync(IReadOnlyList<Flow> flows, CancellationToken cancellationToken = default);

    /// <summary>The flow with <paramref name="id"/>, bodies included; null when there is none.</summary>
    /// <param name="id">The flow's id.</param>
    /// <param name="cancellationToken">Abandons the call.</param>
    /// <returns>The flow or null.</returns>
    /// <exception cref="IOException">The store could not be read.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    ValueTask<Flow?> GetAsync(Guid id, CancellationToken cancellationToken = default);

    /// <summary>The flows that match <paramref name="query"/>'s filter (all when it has none), in append order.</summary>
    /// <param name="query">The filter, whether to load bodies, and how many at most; everything, without bodies,
    /// when null.</param>
    /// <param name="cancellationToken">Stops the enumeration.</param>
    /// <returns>The flows, read as they are enumerated.</returns>
    /// <exception cref="IOException">The store could not be read.</exception>
    /// <exception cref="System.Text.RegularExpressions.RegexMatchTimeoutException">A regular expression of the filter
    /// ran longer than its timeout on a flow.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    IAsyncEnumerable<Flow> QueryAsync(FlowQuery? query = null, CancellationToken cancellationToken = default);

    /// <summary>What a list shows of the flows that match <paramref name="filter"/> (all when null), in append order. A
    /// store that keeps these in columns decodes no stored flow for them; the default reads the flows through
    /// <see cref="QueryAsync"/>.</summary>
    /// <param name="filter">The filter, or null.</param>
    /// <param name="cancellationToken">Stops the enumeration.</param>
    /// <returns>The listings, read as they are enumerated.</returns>
    /// <exception cref="IOException">The store could not be read.</exception>
    /// <exception cref="System.Text.RegularExpressions.RegexMatchTimeoutException">A regular expression of the filter
    /// ran longer than its timeout on a flow.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    async IAsyncEnumerable<FlowListing> ListAsync(FlowFilter? filter = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var flow in QueryAsync(new FlowQuery { Filter = filter }, cancellationToken))
        {
            yield return FlowListing.From(flow);
        }
    }

    /// <summary>How many flows match <paramref name="filter"/> (all when null).</summary>
    /// <param name="filter">The filter, or null.</param>
    /// <param name="cancellationToken">Abandons the count.</param>
    /// <returns>The count.</returns>
    /// <exception cref="IOException">The store could not be read.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    ValueTask<long> CountAsync(FlowFilter? filter = null, CancellationToken cancellationToken = default);

    /// <summary>The last <paramref name="count"/> flows that match <paramref name="filter"/>, their position, and how many
    /// match, read at one moment (the web UI's list: its newest rows, then the flows it is told about after; see
    /// <see cref="IFlowStoreObserver"/>). This default reads the count and the flows one after the other, and gives no
    /// sequence; the stores of this library read both at once and give it.</summary>
    /// <param name="filter">The filter, or null.</param>
    /// <param name="count">How many of the last flows to return at most.</param>
    /// <param name="includeBodies">Whether the flows come with their bodies (<see cref="FlowQuery.IncludeBodies"/>).</param>
    /// <param name="cancellationToken">Abandons the read.</param>
    /// <returns>The flows, their offset, the total and the sequence.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    /// <exception cref="IOException">The store could not be read.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    async ValueTask<FlowTail> TailAsync(FlowFilter? filter, int count, bool includeBodies = false, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var total = await CountAsync(filter, cancellationToken);
        var offset = (int)Math.Min(int.MaxValue, Math.Max(0, total - count));
        var flows = new List<Flow>((int)Math.Min(count, total - offset));
        await foreach (var flow in QueryAsync(new FlowQuery { Filter = filter, Offset = offset, Limit = count, IncludeBodies = includeBodies }, cancellationToken))
        {
            flows.Add(flow);
        }

        return new FlowTail(offset, flows, Math.Max(total, offset + flows.Count), null);
    }

    /// <summary>Deletes the flows that match <paramref name="filter"/>, or every flow when it is null.</summary>
    /// <param name="filter">The filter, or null to clear the store.</param>
    /// <param name="cancellationToken">Abandons the call before the deletion commits.</param>
    /// <returns>How many flows were deleted.</returns>
    /// <exception cref="InvalidOperationException">The store was opened read-only.</exception>
    /// <exception cref="IOException">The store could not be written.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    ValueTask<long> DeleteAsync(FlowFilter? filter = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes the flows whose ids are in <paramref name="ids"/>; ids not in the store are ignored.</summary>
    /// <param name="ids">The flows' ids.</param>
    /// <param name="cancellationToken">Abandons the call before the deletion commits.</param>
    /// <returns>How many flows were deleted.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="ids"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The store was opened read-only.</exception>
    /// <exception cref="IOException">The store could not be written.</exception>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    ValueTask<long> DeleteByIdAsync(IReadOnlyCollection<Guid> ids, CancellationToken cancellationToken = default);
}
