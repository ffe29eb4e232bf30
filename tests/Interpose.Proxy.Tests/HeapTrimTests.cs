using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests;

/// <summary>
/// Memory comes back after a burst of client connections (issue 19): the C heap is trimmed (glibc malloc_trim) only
/// after enough connections came or went, at most once per interval; the collector's free committed memory is given
/// back once, after such a burst, when a whole interval passed without a gen0 collection and what it committed grew by
/// HeapTrim.MinGrowthBytes or more since the start or the last such release. All on the proxy's clock.
/// </summary>
public sealed class HeapTrimTests
{
    private const long MiB = 1024 * 1024;

    [LinuxFact]
    public void Trims_once_the_churn_reaches_its_threshold_and_not_before()
    {
        Assert.True(HeapTrim.Supported);
        var time = new ManualClock();
        var trims = new List<int>();
        using var trim = new HeapTrim(time, minChurn: 3, (churn, _) => trims.Add(churn), heap: new FakeHeap().Heap);

        trim.Note();
        trim.Note();
        time.Advance(HeapTrim.Interval);
        Assert.Empty(trims);

        trim.Note();
        time.Advance(HeapTrim.Interval);
        Assert.Equal([3], trims);

        // The count starts again after a trim: a quiet interval does not trim.
        time.Advance(HeapTrim.Interval);
        Assert.Equal([3], trims);
    }

    [Fact]
    public void After_a_burst_the_collectors_free_memory_is_given_back_once_the_proxy_is_quiet()
    {
        var time = new ManualClock();
        var heap = new FakeHeap { Committed = 15 * MiB, AfterRelease = 14 * MiB };
        var released = new List<(long Before, long After)>();
        using var trim = new HeapTrim(time, minChurn: 2, trimmed: null, (before, after, _) => released.Add((before, after)), heap.Heap);

        // The burst: connections come and go while the collector runs and commits more.
        trim.Note();
        trim.Note();
        heap.Gen0 += 5;
        heap.Committed = 57 * MiB;
        time.Advance(HeapTrim.Interval);
        Assert.Empty(released);

        // Still busy (collections in the interval): nothing yet.
        heap.Gen0 += 3;
        time.Advance(HeapTrim.Interval);
        Assert.Empty(released);

        // A whole interval without a collection: one release.
        time.Advance(HeapTrim.Interval);
        Assert.Equal([(57 * MiB, 14 * MiB)], released);
        Assert.Equal(1, heap.Releases);

        // And no more without a new burst, however quiet and however much is free.
        heap.Committed = 57 * MiB;
        Intervals(time, 2);
        Assert.Equal(1, heap.Releases);
    }

    [Fact]
    public void A_quiet_proxy_without_a_burst_is_never_collected()
    {
        var time = new ManualClock();
        var heap = new FakeHeap { Committed = 10 * MiB };
        using var trim = new HeapTrim(time, minChurn: 2, trimmed: null, heap: heap.Heap);

        trim.Note();
        heap.Committed = 200 * MiB;
        Intervals(time, 3);

        Assert.Equal(0, heap.Releases);
    }

    [Fact]
    public void A_burst_that_grew_the_collector_by_less_than_the_threshold_is_left_alone()
    {
        var time = new ManualClock();
        var heap = new FakeHeap { Committed = 20 * MiB, AfterRelease = 18 * MiB };
        using var trim = new HeapTrim(time, minChurn: 1, trimmed: null, heap: heap.Heap);

        // Grown by 15 MiB: under HeapTrim.MinGrowthBytes.
        trim.Note();
        heap.Committed = 35 * MiB;
        Intervals(time, 2);
        Assert.Equal(0, heap.Releases);

        // A second burst takes it to 16 MiB above the start: released, and what is left is the new baseline.
        trim.Note();
        heap.Committed = 36 * MiB;
        Intervals(time, 2);
        Assert.Equal(1, heap.Releases);

        // From 18 MiB left, 30 MiB (12 more) after the next burst is not worth a collection.
        trim.Note();
        heap.Committed = 30 * MiB;
        Intervals(time, 2);
        Assert.Equal(1, heap.Releases);
    }

    /// <summary>Moves the clock by <paramref name="count"/> whole trim intervals, one at a time (one tick each).</summary>
    private static void Intervals(ManualClock time, int count)
    {
        for (var i = 0; i < count; i++)
        {
            time.Advance(HeapTrim.Interval);
        }
    }

    /// <summary>A collector the test moves by hand; a release leaves <see cref="AfterRelease"/> committed.</summary>
    private sealed class FakeHeap
    {
        public FakeHeap() => Heap = new ManagedHeap(() => Gen0, () => Committed, () =>
        {
            Releases++;
            Gen0++;
            Committed = AfterRelease;
        });

        public int Gen0 { get; set; }

        public long Committed { get; set; }

        public long AfterRelease { get; set; }

        public int Releases { get; private set; }

        public ManagedHeap Heap { get; }
    }
}
