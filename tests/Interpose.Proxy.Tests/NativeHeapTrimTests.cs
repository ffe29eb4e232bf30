using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The C heap is trimmed (glibc malloc_trim) only after enough client connections came or went, at most once per
/// interval, on the proxy's clock (issue 19: RSS that comes back after a burst of connections).
/// </summary>
public sealed class NativeHeapTrimTests
{
    [LinuxFact]
    public void Trims_once_the_churn_reaches_its_threshold_and_not_before()
    {
        Assert.True(NativeHeapTrim.Supported);
        var time = new ManualClock();
        var trims = new List<int>();
        using var trim = new NativeHeapTrim(time, minChurn: 3, (churn, _) => trims.Add(churn));

        trim.Note();
        trim.Note();
        time.Advance(NativeHeapTrim.Interval);
        Assert.Empty(trims);

        trim.Note();
        time.Advance(NativeHeapTrim.Interval);
        Assert.Equal([3], trims);

        // The count starts again after a trim: a quiet interval does not trim.
        time.Advance(NativeHeapTrim.Interval);
        Assert.Equal([3], trims);
    }
}
