using System.Diagnostics;
using System.Diagnostics.Metrics;
using Interpose.Certificates;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The proxy's instruments, on a <see cref="Meter"/> named <see cref="MeterName"/> (one per running server), so that
/// <c>dotnet-counters</c>, a <see cref="MeterListener"/> or an OpenTelemetry exporter see them without any setup here.
/// </summary>
/// <remarks>
/// Cheap when nobody listens: every recording first checks <see cref="Instrument.Enabled"/>, and tags travel in a
/// <see cref="TagList"/> struct (no array per call). Observable instruments read counters the cache and the pool keep
/// anyway, only when a listener collects.
/// </remarks>
internal sealed class ProxyMetrics : IDisposable
{
    /// <summary>The meter's name: what <c>dotnet-counters monitor --counters Interpose</c> and <c>AddMeter</c> take.</summary>
    public const string MeterName = "Interpose";

    /// <summary>
    /// Histogram buckets for exchange duration in milliseconds: from 0.1 ms (a loopback keep-alive exchange) to 10 s
    /// (a slow origin), roughly 1-2.5-5 per decade, as the OpenTelemetry HTTP semantic conventions' buckets scaled to ms.
    /// </summary>
    private static readonly double[] DurationBucketsMs = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

    private readonly Meter _meter;
    private readonly Counter<long> _connections;
    private readonly UpDownCounter<long> _activeConnections;
    private readonly Counter<long> _refusedConnections;
    private readonly Counter<long> _shedConnections;
    private readonly Counter<long> _exchanges;
    private readonly Histogram<double> _exchangeDuration;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _tlsHandshakes;
    private readonly Counter<long> _unsolicitedResponses;
    private readonly Counter<long> _upstreamRetries;
    private readonly Counter<long> _dataRateViolations;
    private readonly Counter<long> _addonTimeouts;

    public ProxyMetrics(IMeterFactory? factory, LeafCertificateCache leaves, UpstreamPool pool, string meterName = MeterName, IReadOnlyList<FlowRecorder>? recorders = null)
    {
        var options = new MeterOptions(meterName);
        _meter = factory?.Create(options) ?? new Meter(options);
        _connections = _meter.CreateCounter<long>("interpose.connections", "{connection}", "Client connections accepted");
        _activeConnections = _meter.CreateUpDownCounter<long>("interpose.connections.active", "{connection}", "Client connections open now");
        _refusedConnections = _meter.CreateCounter<long>("interpose.connections.refused", "{connection}", "Client connections refused at accept, by reason (total_limit, client_limit: answered 503; not_allowed: closed)");
        _shedConnections = _meter.CreateCounter<long>("interpose.connections.shed", "{connection}", "Client connections without a complete first request head closed to make room for a new one, by the limit reached (total_limit, client_limit)");
        _exchanges = _meter.CreateCounter<long>("interpose.exchanges", "{exchange}", "HTTP exchanges finished, by outcome (ok, error, killed, synthetic)");
        _exchangeDuration = _meter.CreateHistogram(
            "interpose.exchange.duration",
            "ms",
            "Time from the request head to the end of the response, by outcome",
            tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBucketsMs });
        _bytes = _meter.CreateCounter<long>("interpose.bytes", "By", "Body and tunnel bytes relayed, by direction (upstream: client to origin; downstream: origin to client)");
        _errors = _meter.CreateCounter<long>("interpose.errors", "{error}", "Failed exchanges and tunnels, by phase and whether transient");
        _tlsHandshakes = _meter.CreateCounter<long>("interpose.tls.handshakes", "{handshake}", "TLS handshakes, by side (client, upstream) and result (ok, failed)");
        _unsolicitedResponses = _meter.CreateCounter<long>("interpose.upstream.unsolicited", "{connection}", "Origin connections closed because the origin sent bytes while no request was outstanding (response queue poisoning)");
        _upstreamRetries = _meter.CreateCounter<long>("interpose.upstream.retries", "{request}", "Requests sent again on another origin stream or connection, by reason (not_processed: HTTP/2 REFUSED_STREAM or a stream above GOAWAY's last id; idempotent: a reused connection failed before any response byte)");
        _dataRateViolations = _meter.CreateCounter<long>("interpose.data_rate.violations", "{exchange}", "Exchanges ended because the client moved a body below the minimum data rate, by phase (client_request: sending the request body; client_response: reading the response)");
        _addonTimeouts = _meter.CreateCounter<long>("interpose.addon.timeouts", "{hook}", "Addon hook calls the proxy stopped waiting for after the addon-hook timeout, by addon and hook");
        _meter.CreateObservableCounter("interpose.certificates.forged", () => (long)leaves.ForgeCount, "{certificate}", "Leaf certificates forged");
        _meter.CreateObservableCounter("interpose.certificates.cache", () => CacheMeasurements(leaves), "{lookup}", "Leaf certificate cache lookups, by result (hit, miss)");
        _meter.CreateObservableCounter("interpose.certificates.evictions", () => leaves.Evictions, "{certificate}", "Leaf certificates evicted from the cache");
        _meter.CreateObservableGauge("interpose.pool.idle", () => (long)pool.IdleCount, "{connection}", "Idle origin connections kept for reuse");
        if (recorders is { Count: > 0 })
        {
            // The recorders among the server's addons keep these counts anyway; read only when a listener collects.
            _meter.CreateObservableCounter("interpose.flows.recorded", () => recorders.Sum(r => r.Recorded), "{flow}", "Flows the flow sink kept (for example committed to the -w file; not those of a batch that failed)");
            _meter.CreateObservableCounter("interpose.flows.dropped", () => DropMeasurements(recorders), "{flow}", "Flows recorded without their bodies (what=body) or not at all (what=flow): the queue was filling, or the sink had failed");
            _meter.CreateObservableGauge("interpose.flows.sink_failed", () => (long)recorders.Count(r => r.SinkFailure is not null), "{sink}", "Flow sinks that failed (a full disk, a read-only file): 1 once recording stopped, 0 while it works");
        }
    }

    private static Measurement<long>[] DropMeasurements(IReadOnlyList<FlowRecorder> recorders) =>
    [
        new(recorders.Sum(r => r.DroppedBodies), new KeyValuePair<string, object?>("what", "body")),
        new(recorders.Sum(r => r.DroppedFlows), new KeyValuePair<string, object?>("what", "flow")),
    ];

    /// <summary>The meter itself (tests listen to this instance only, as other servers may run in the same process).</summary>
    public Meter Meter => _meter;

    public void ConnectionOpened()
    {
        if (_connections.Enabled)
        {
            _connections.Add(1);
        }

        if (_activeConnections.Enabled)
        {
            _activeConnections.Add(1);
        }
    }

    public void ConnectionRefused(ConnectionRefusal refusal)
    {
        if (_refusedConnections.Enabled)
        {
            _refusedConnections.Add(1, new TagList { { "reason", ReasonTag(refusal) } });
        }
    }

    /// <summary>A connection still without a complete first request head was closed to make room at <paramref name="limit"/>.</summary>
    public void ConnectionShed(ConnectionRefusal limit)
    {
        if (_shedConnections.Enabled)
        {
            _shedConnections.Add(1, new TagList { { "reason", ReasonTag(limit) } });
        }
    }

    public void ConnectionClosed()
    {
        if (_activeConnections.Enabled)
        {
            _activeConnections.Add(-1);
        }
    }

    /// <summary>One exchange ended: its outcome and duration (in <see cref="TimeProvider"/> timestamps).</summary>
    public void ExchangeDone(HttpExchange exchange, TimeSpan duration)
    {
        if (!_exchanges.Enabled && !_exchangeDuration.Enabled)
        {
            return;
        }

        var outcome = exchange.Error is not null ? "error" : exchange.IsKilled ? "killed" : exchange.IsSynthetic ? "synthetic" : "ok";
        var tags = new TagList { { "outcome", outcome } };
        _exchangeDuration.Record(duration.TotalMilliseconds, tags);

        // Each side's protocol (h2 -> h1): a handful of values, so the counter's cardinality stays small.
        tags.Add("protocol", FlowLog.Protocols(exchange));
        _exchanges.Add(1, tags);
    }

    public void BytesUpstream(long count) => AddBytes(count, "upstream");

    public void BytesDownstream(long count) => AddBytes(count, "downstream");

    public void Error(ExchangeError error)
    {
        if (_errors.Enabled)
        {
            _errors.Add(1, new TagList { { "phase", PhaseTag(error.Phase) }, { "transient", error.IsTransient ? "true" : "false" } });
        }
    }

    /// <summary>A TLS handshake finished; <paramref name="client"/>: with the client (else with the origin).</summary>
    public void TlsHandshake(bool client, bool ok)
    {
        if (_tlsHandshakes.Enabled)
        {
            _tlsHandshakes.Add(1, new TagList { { "side", client ? "client" : "upstream" }, { "result", ok ? "ok" : "failed" } });
        }
    }

    /// <summary>An origin sent bytes on a connection with no request outstanding; the connection was closed.</summary>
    public void UnsolicitedResponse()
    {
        if (_unsolicitedResponses.Enabled)
        {
            _unsolicitedResponses.Add(1);
        }
    }

    /// <summary>
    /// A request is sent again: <paramref name="notProcessed"/>, because the HTTP/2 origin said it did not process it
    /// (RFC 9113 §8.7); otherwise because it is idempotent and its reused connection failed before any response byte.
    /// </summary>
    public void UpstreamRetry(bool notProcessed)
    {
        if (_upstreamRetries.Enabled)
        {
            _upstreamRetries.Add(1, new TagList { { "reason", notProcessed ? "not_processed" : "idempotent" } });
        }
    }

    /// <summary>
    /// <paramref name="addon"/>'s <paramref name="hook"/> did not complete within the addon-hook timeout. Tagged by
    /// addon and hook: a handful of each, so the cardinality stays small.
    /// </summary>
    public void AddonTimedOut(string addon, string hook)
    {
        if (_addonTimeouts.Enabled)
        {
            _addonTimeouts.Add(1, new TagList { { "addon", addon }, { "hook", hook } });
        }
    }

    /// <summary>An exchange ended because the client was below the minimum data rate in <paramref name="phase"/>.</summary>
    public void DataRateViolated(ExchangePhase phase)
    {
        if (_dataRateViolations.Enabled)
        {
            _dataRateViolations.Add(1, new TagList { { "phase", PhaseTag(phase) } });
        }
    }

    public void Dispose() => _meter.Dispose();

    private void AddBytes(long count, string direction)
    {
        if (count > 0 && _bytes.Enabled)
        {
            _bytes.Add(count, new TagList { { "direction", direction } });
        }
    }

    private static Measurement<long>[] CacheMeasurements(LeafCertificateCache leaves) =>
    [
        new(leaves.Hits, new KeyValuePair<string, object?>("result", "hit")),
        new(leaves.Misses, new KeyValuePair<string, object?>("result", "miss")),
    ];

    private static string ReasonTag(ConnectionRefusal refusal) => refusal switch
    {
        ConnectionRefusal.TotalLimit => "total_limit",
        ConnectionRefusal.ClientLimit => "client_limit",
        _ => "not_allowed",
    };

    private static string PhaseTag(ExchangePhase phase) => phase switch
    {
        ExchangePhase.Dns => "dns",
        ExchangePhase.Connect => "connect",
        ExchangePhase.Tls => "tls",
        ExchangePhase.Request => "request",
        ExchangePhase.Response => "response",
        ExchangePhase.ClientRequest => "client_request",
        ExchangePhase.ClientResponse => "client_response",
        _ => "addon",
    };
}
