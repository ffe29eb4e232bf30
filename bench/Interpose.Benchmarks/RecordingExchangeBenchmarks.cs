using BenchmarkDotNet.Attributes;
using Interpose.Core.Flows;
using Interpose.Proxy;
using Interpose.Store;

namespace Interpose.Benchmarks;

/// <summary>
/// <see cref="ProxyExchangeBenchmarks"/> with a <see cref="FlowRecorder"/> attached (issue 16: recording must cost
/// little): into a sink that keeps nothing (the recorder's own cost: body captures, building the flow, the queue and its
/// consumer), and into a <see cref="SqliteFlowStore"/> (plus the store's write). Allocated bytes count every thread, the
/// recorder's background task included; compare <c>HttpsIntercepted</c> across <see cref="Sink"/>.
/// </summary>
/// <remarks>Run with <c>--filter '*RecordingExchange*HttpsIntercepted*' --job short --inProcess</c>.</remarks>
public class RecordingExchangeBenchmarks : ProxyExchangeBenchmarks
{
    private FlowRecorder? _recorder;
    private SqliteFlowStore? _store;

    /// <summary>Where the recorder writes: <c>none</c> (no recorder), <c>discard</c>, <c>sqlite</c>.</summary>
    [Params("none", "discard", "sqlite")]
    public string Sink { get; set; } = "none";

    /// <inheritdoc/>
    protected override void Configure(ProxyOptions options, string home)
    {
        IFlowSink? sink = Sink switch
        {
            "discard" => new DiscardingSink(),
            "sqlite" => _store = SqliteFlowStore.Open(Path.Combine(home, "flows.db")),
            _ => null,
        };
        if (sink is not null)
        {
            _recorder = new FlowRecorder(sink);
            options.Addons.Add(_recorder);
        }
    }

    /// <inheritdoc/>
    protected override async ValueTask AfterProxyStoppedAsync()
    {
        if (_recorder is not null)
        {
            await _recorder.DisposeAsync();
        }

        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }

    /// <summary>Takes flows and keeps none (a <see cref="MemoryFlowSink"/> would grow for the whole run).</summary>
    private sealed class DiscardingSink : IFlowSink
    {
        public ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken) => default;

        public ValueTask FlushAsync(CancellationToken cancellationToken) => default;
    }
}
