using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http;
using Interpose.Proxy.Tests.Infrastructure;
using Interpose.Store;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>A <see cref="FlowRecorder"/> writing into a <see cref="SqliteFlowStore"/> inside a running proxy.</summary>
public sealed class FlowStoreRecordingTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("interpose-recording-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_full_store_stops_recording_with_one_error_and_a_metric_while_the_proxy_goes_on_and_the_file_stays_readable()
    {
        var path = Path.Combine(_dir, "full.db");
        using var logs = new LogCollector();

        // 256 KiB at most: the second 200 KB exchange cannot fit, as on a full disk.
        var store = SqliteFlowStore.Open(path, new SqliteFlowStoreOptions { MaxFileBytes = 256 * 1024 });
        var recorder = new FlowRecorder(store, logger: logs.CreateLogger("Interpose.Recorder"));
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(recorder));
        var failed = -1L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, proxy.Server.Metrics!.Meter) && instrument.Name == "interpose.flows.sink_failed")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Exchange(ref failed, value));
        listener.Start();

        listener.RecordObservableInstruments();
        Assert.Equal(0, Interlocked.Read(ref failed));
        using var client = proxy.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            using var content = new ByteArrayContent(new byte[100_000]);
            using var echoed = await client.PostAsync(origin.Url("/echo"), content);
            Assert.Equal(HttpStatusCode.OK, echoed.StatusCode);
        }

        var error = await logs.WaitForAsync(322);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));
        }

        listener.RecordObservableInstruments();
        await proxy.Server.StopAsync();
        await recorder.DisposeAsync();
        await store.DisposeAsync();

        Assert.Equal(LogLevel.Error, error.Level);
        Assert.Single(logs.Entries, e => e.EventId.Id == 322);
        Assert.Equal(1, Interlocked.Read(ref failed));
        var failure = Assert.IsAssignableFrom<IOException>(recorder.SinkFailure);
        Assert.Contains("full", failure.Message, StringComparison.Ordinal);

        // The three exchanges after the failure at least were not recorded; what was committed before it reads back.
        Assert.True(recorder.DroppedFlows >= 3, $"dropped {recorder.DroppedFlows}");
        Assert.InRange(store.Written, 0, 1);
        await using var reader = SqliteFlowStore.Open(path, new SqliteFlowStoreOptions { ReadOnly = true });
        Assert.Equal(store.Written, await reader.CountAsync());
    }
}
