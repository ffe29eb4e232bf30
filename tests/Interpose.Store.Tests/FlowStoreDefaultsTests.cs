using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Http;

namespace Interpose.Store.Tests;

/// <summary>What <see cref="IFlowStore"/> gives a store that implements only its required members.</summary>
public sealed class FlowStoreDefaultsTests
{
    [Fact]
    public async Task The_default_tail_counts_then_reads_the_last_flows_and_gives_no_sequence()
    {
        await using var inner = new MemoryFlowStore();
        IFlowStore store = new RequiredMembersOnly(inner);
        var flows = Enumerable.Range(0, 5).Select(i => Flow("/" + i, i % 2 == 0 ? 200 : 404)).ToList();
        await store.AppendAsync(flows);

        var tail = await store.TailAsync(FlowFilter.Parse("~c 200"), 2);
        Assert.Equal((1L, 3L, (long?)null), (tail.Offset, tail.Total, tail.Sequence));
        Assert.Equal(["/2", "/4"], tail.Flows.Select(f => ((HttpFlow)f).Request.Path));

        tail = await store.TailAsync(null, 10);
        Assert.Equal((0L, 5L), (tail.Offset, tail.Total));
        Assert.Equal(flows.Select(f => f.Id), tail.Flows.Select(f => f.Id));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await store.TailAsync(null, -1));
    }

    private static HttpFlow Flow(string path, int status) => new()
    {
        Id = Guid.NewGuid(),
        StartedAt = DateTimeOffset.UnixEpoch,
        ClientHttpVersion = "HTTP/1.1",
        Request = new FlowRequest { Method = "GET", Scheme = "http", Host = "defaults.test", Port = 80, Path = path, HttpVersion = "HTTP/1.1", Headers = new HttpHeaders() },
        Response = new FlowResponse { StatusCode = status, HttpVersion = "HTTP/1.1", Headers = new HttpHeaders() },
    };

    /// <summary>A store with the members <see cref="IFlowStore"/> requires and nothing else, so its defaults run.</summary>
    private sealed class RequiredMembersOnly(IFlowStore inner) : IFlowStore
    {
        public ValueTask AppendAsync(IReadOnlyList<Flow> flows, CancellationToken cancellationToken = default) => inner.AppendAsync(flows, cancellationToken);

        public ValueTask<Flow?> GetAsync(Guid id, CancellationToken cancellationToken = default) => inner.GetAsync(id, cancellationToken);

        public IAsyncEnumerable<Flow> QueryAsync(FlowQuery? query = null, CancellationToken cancellationToken = default) => inner.QueryAsync(query, cancellationToken);

        public ValueTask<long> CountAsync(FlowFilter? filter = null, CancellationToken cancellationToken = default) => inner.CountAsync(filter, cancellationToken);

        public ValueTask<long> DeleteAsync(FlowFilter? filter = null, CancellationToken cancellationToken = default) => inner.DeleteAsync(filter, cancellationToken);

        public ValueTask<long> DeleteByIdAsync(IReadOnlyCollection<Guid> ids, CancellationToken cancellationToken = default) => inner.DeleteByIdAsync(ids, cancellationToken);

        public ValueTask DisposeAsync() => default;
    }
}
