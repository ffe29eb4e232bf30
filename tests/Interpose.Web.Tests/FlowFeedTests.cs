using Interpose.Core.Flows;

namespace Interpose.Web.Tests;

/// <summary>The live feed's queues, without sockets: what a tail-following browser is sent and what it is not.</summary>
public sealed class FlowFeedTests
{
    [Fact]
    public void A_tail_following_subscriber_gets_the_newest_rows_and_the_count_of_the_others()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true);
        const int Extra = 57;
        var flows = Enumerable.Range(0, FlowFeed.TailRows + Extra).Select(i => Flow(i)).ToList();

        feed.Publish(flows);

        var rows = new List<FlowSummary>();
        Assert.Equal(Extra, subscription.TakeTail(rows));
        Assert.Equal(flows.Skip(Extra).Select(f => f.Id), rows.Select(r => r.Id)); // the newest, oldest first
        Assert.False(subscription.Reader.TryRead(out _)); // new rows never go to the unbounded-rate queue

        // Nothing new since: an empty push.
        rows.Clear();
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Empty(rows);
    }

    [Fact]
    public void Changed_rows_reach_a_tail_following_subscriber_whatever_the_ring_holds()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true);
        var marked = Flow(0) with { Marker = "marked" };

        feed.Publish(Enumerable.Range(1, FlowFeed.TailRows * 2).Select(i => Flow(i)));
        feed.Changed([marked]);

        Assert.True(subscription.Reader.TryRead(out var item));
        Assert.Equal(FeedItemKind.Row, item.Kind);
        Assert.Equal(marked.Id, item.Row!.Id);
        Assert.Equal("marked", item.Row.Marker);
        var rows = new List<FlowSummary>();
        Assert.Equal(FlowFeed.TailRows, subscription.TakeTail(rows));
        Assert.DoesNotContain(rows, r => r.Id == marked.Id);
    }

    [Fact]
    public void A_subscriber_that_does_not_follow_the_tail_gets_every_row()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null);
        var flows = Enumerable.Range(0, FlowFeed.TailRows + 1).Select(i => Flow(i)).ToList();

        feed.Publish(flows);

        var ids = new List<Guid>();
        while (subscription.Reader.TryRead(out var item))
        {
            ids.Add(item.Row!.Id);
        }

        Assert.Equal(flows.Select(f => f.Id), ids);
        Assert.Equal(0, subscription.TakeTail([]));
    }

    [Fact]
    public async Task A_tail_following_subscriber_wakes_for_a_row_and_for_a_signal()
    {
        var feed = new FlowFeed();
        using var subscription = feed.Subscribe(null, null, tail: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var waiting = subscription.WaitAsync(timeout.Token).AsTask();
        Assert.False(waiting.IsCompleted);
        feed.Publish([Flow(1)]);
        Assert.True(await waiting);
        var rows = new List<FlowSummary>();
        Assert.Equal(0, subscription.TakeTail(rows));
        Assert.Single(rows);

        waiting = subscription.WaitAsync(timeout.Token).AsTask();
        Assert.False(waiting.IsCompleted);
        feed.InterceptChanged();
        Assert.True(await waiting);
        Assert.True(subscription.Reader.TryRead(out var item));
        Assert.Equal(FeedItemKind.Intercept, item.Kind);
    }

    private static HttpFlow Flow(int i) =>
        WebApiTests.Sample(Guid.NewGuid()) with { Request = WebApiTests.Sample(Guid.Empty).Request with { Path = "/item/" + i } };
}
