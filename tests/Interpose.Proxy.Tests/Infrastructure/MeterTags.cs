using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>Listens to the measurements of one instrument of one proxy's meter.</summary>
public static class MeterTags
{
    /// <summary>Listens to one instrument of <paramref name="meter"/>; each measurement adds its tag's value, once per unit.</summary>
    public static MeterListener Collect(Meter meter, string instrumentName, string tagKey, ConcurrentQueue<string> values)
    {
        var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == instrumentName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                for (var i = 0L; tag.Key == tagKey && i < value; i++)
                {
                    values.Enqueue((string)tag.Value!);
                }
            }
        });
        listener.Start();
        return listener;
    }
}
