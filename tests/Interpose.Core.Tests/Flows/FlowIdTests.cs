using Interpose.Core.Flows;

namespace Interpose.Core.Tests.Flows;

public sealed class FlowIdTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 4, 11, 50, 1, 234, TimeSpan.Zero);

    [Fact]
    public void An_id_is_an_RFC_9562_version_7_uuid_led_by_the_start_in_unix_milliseconds()
    {
        var id = FlowId.New(Start);

        Assert.Equal(7, id.Version);
        // RFC 9562 §4.1: the variant field 0b10x (Guid.Variant reports the top nibble of octet 8: 8 to 11).
        Assert.InRange(id.Variant, 8, 11);
        var octets = id.ToByteArray(bigEndian: true);
        var milliseconds = ((long)octets[0] << 40) | ((long)octets[1] << 32) | ((long)octets[2] << 24) | ((long)octets[3] << 16) | ((long)octets[4] << 8) | octets[5];
        Assert.Equal(Start.ToUnixTimeMilliseconds(), milliseconds);
    }

    [Fact]
    public void Ids_sort_by_start_and_ids_of_the_same_millisecond_differ()
    {
        Assert.True(FlowId.New(Start).CompareTo(FlowId.New(Start.AddMilliseconds(1))) < 0);
        Assert.True(string.CompareOrdinal(FlowId.New(Start).ToString(), FlowId.New(Start.AddMilliseconds(1)).ToString()) < 0);

        const int Count = 10_000;
        var ids = new HashSet<Guid>();
        for (var i = 0; i < Count; i++)
        {
            ids.Add(FlowId.New(Start));
        }

        Assert.Equal(Count, ids.Count);
    }

    [Fact]
    public void A_start_before_the_unix_epoch_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => FlowId.New(DateTimeOffset.UnixEpoch.AddMilliseconds(-1)));
}
