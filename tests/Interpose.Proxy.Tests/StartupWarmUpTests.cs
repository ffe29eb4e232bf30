using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests;

/// <summary>The start-up warm-up runs a whole intercepted exchange through a session, on instruments of its own.</summary>
public sealed class StartupWarmUpTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Warm_up_serves_one_intercepted_exchange_through_a_session_on_its_own_meter(bool useOpenSslCiphers)
    {
        var measured = new ConcurrentQueue<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == StartupWarmUp.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, _, tags, _) => measured.Enqueue(Describe(instrument, tags)));
        listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) => measured.Enqueue(Describe(instrument, tags)));
        listener.Start();
        using var timeout = new CancellationTokenSource(Bound);

        var response = await StartupWarmUp.RunExchangeAsync(useOpenSslCiphers, timeout.Token);

        // The client trusted only the throwaway CA and got the origin's chunked answer through the session.
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", response, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 5\r\n\r\nwarm.HTTP/1.1 200 OK\r\n", response, StringComparison.Ordinal);
        Assert.Contains("Transfer-Encoding: chunked\r\n", response, StringComparison.Ordinal);
        Assert.EndsWith("5\r\nwarm.\r\n0\r\n\r\n", response, StringComparison.Ordinal);
        Assert.NotEqual(ProxyMetrics.MeterName, StartupWarmUp.MeterName);
        Assert.Contains("interpose.tls.handshakes side=client result=ok", measured);
        Assert.Contains("interpose.tls.handshakes side=upstream result=ok", measured);
        // Other tests' servers run the process-wide warm-up meanwhile, on the same meter name: counted, not exact.
        Assert.Contains("interpose.exchanges outcome=ok protocol=h1 -> h1", measured);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_warm_up_runs_only_when_the_options_ask_for_it(bool warmUp)
    {
        Assert.False(new ProxyOptions().WarmUp);
        await using var proxy = await TestProxy.StartAsync(configure: o => o.WarmUp = warmUp);

        Assert.Equal(warmUp, proxy.Server.WarmedUp);
    }

    private static string Describe(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var text = instrument.Name;
        foreach (var tag in tags)
        {
            text += " " + tag.Key + "=" + tag.Value;
        }

        return text;
    }
}
