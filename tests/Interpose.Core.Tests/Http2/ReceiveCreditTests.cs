using Interpose.Core.Http2;

namespace Interpose.Core.Tests.Http2;

public class ReceiveCreditTests
{
    [Fact]
    public void Credit_is_returned_in_batches_once_consumed()
    {
        var window = new FlowWindow(1, 1000);
        var credit = new ReceiveCredit(window, threshold: 500);
        window.Consume(400);
        window.Consume(600);
        Assert.Equal(0, window.Size);
        Assert.Equal(0, credit.OnConsumed(400));
        Assert.Equal(400, credit.Pending);
        Assert.Equal(500, credit.OnConsumed(100));
        Assert.Equal(500, window.Size);
        Assert.Equal(0, credit.Pending);

        // Data the reader has not consumed keeps the window closed: the peer cannot send past it.
        window.Consume(500);
        Assert.Throws<Http2StreamException>(() => window.Consume(1));
    }
}
