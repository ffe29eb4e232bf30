using System.Net;
using Interpose.Certificates;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>What every connection flow of one running server shares: options, logs, addons, certificates, pool.</summary>
internal sealed class ProxyRuntime
{
    private long _clientIds;
    private long _serverIds;
    private long _exchangeIds;

    // Swapped whole (ProxyServer.ReplaceAddons) and read once per exchange: an exchange runs every hook on one list.
    private AddonRunner _addons;

    // meterName: ProxyMetrics.MeterName, but for the start-up warm-up's runtime, whose traffic no exporter may see.
    public ProxyRuntime(ProxyOptions options, ILoggerFactory loggerFactory, LeafCertificateCache leaves, CancellationToken draining, CancellationToken aborted, string meterName = ProxyMetrics.MeterName)
    {
        Options = options;
        Time = options.TimeProvider;
        Logger = loggerFactory.CreateLogger("Interpose.Proxy");
        FlowLogger = loggerFactory.CreateLogger("Interpose.Flow");
        Leaves = leaves;
        Pool = new UpstreamPool(Time, options.Timeouts.UpstreamIdle, options.MaxIdleConnectionsPerOrigin, options.MaxIdleConnectionsTotal);
        Connector = new UpstreamConnector(this);
        Metrics = new ProxyMetrics(options.MeterFactory, leaves, Pool, meterName, [.. options.Addons.OfType<FlowRecorder>()]);
        HookDeadlines = new HookDeadlines(Time, options.Timeouts.AddonHook, Metrics, Logger);
        _addons = new AddonRunner([.. options.Addons], HookDeadlines);
        Authenticator = new ProxyAuthenticator(options.Authentication);
        Draining = draining;
        Aborted = aborted;
        Traced = meterName == ProxyMetrics.MeterName;
        var logger = Logger;
        HeapTrim = new HeapTrim(Time, HeapTrim.DefaultMinChurn, (churn, took) => ProxyLog.NativeHeapTrimmed(logger, churn, took.TotalMilliseconds),
            (before, after, took) => ProxyLog.ManagedHeapReleased(logger, before, after, took.TotalMilliseconds));
    }

    /// <summary>Whether exchanges get activities (<see cref="ExchangeTracing"/>): not the warm-up's, which no exporter may see.</summary>
    public bool Traced { get; }

    public ProxyOptions Options { get; }

    /// <summary>
    /// Opens the byte stream to an origin instead of a TCP connection (after name resolution, before TLS); null: TCP.
    /// The exchange pipeline's tests run against in-memory origins through it.
    /// </summary>
    public Func<UpstreamKey, CancellationToken, ValueTask<Stream>>? Dialer { get; init; }

    public TimeProvider Time { get; }

    /// <summary>Data-rate monitors made and not yet disposed: zero once every connection ended (a test's check for leaks).</summary>
    public System.Runtime.CompilerServices.StrongBox<long> OpenDataRateMonitors { get; } = new();

    public ILogger Logger { get; }

    public ILogger FlowLogger { get; }

    /// <summary>The current addons: an immutable list, replaced whole by <see cref="ReplaceAddons"/>.</summary>
    public AddonRunner Addons => Volatile.Read(ref _addons);

    public LeafCertificateCache Leaves { get; }

    public UpstreamPool Pool { get; }

    public UpstreamConnector Connector { get; }

    public ProxyMetrics Metrics { get; }

    /// <summary>The bound on every addon hook call (<see cref="ProxyTimeouts.AddonHook"/>), shared by every addon list.</summary>
    public HookDeadlines HookDeadlines { get; }

    public ProxyAuthenticator Authenticator { get; }

    /// <summary>Gives the C heap's free memory back after a burst of connections, and the collector's once the proxy is quiet
    /// after it; each client connection counts itself.</summary>
    public HeapTrim HeapTrim { get; }

    /// <summary>Cancelled when the server stops accepting: idle connections close, busy ones finish their exchange.</summary>
    public CancellationToken Draining { get; }

    /// <summary>Cancelled when the shutdown deadline passes: everything still open is closed.</summary>
    public CancellationToken Aborted { get; }

    /// <summary>Makes <paramref name="addons"/> the list new exchanges and connection events run; running ones keep theirs.</summary>
    public void ReplaceAddons(ProxyAddon[] addons) => Volatile.Write(ref _addons, new AddonRunner(addons, HookDeadlines));

    public long NextClientId() => Interlocked.Increment(ref _clientIds);

    public long NextServerId() => Interlocked.Increment(ref _serverIds);

    public long NextExchangeId() => Interlocked.Increment(ref _exchangeIds);

    public ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        Options.Resolver is { } resolver ? resolver(host, cancellationToken) : new ValueTask<IPAddress[]>(Dns.GetHostAddressesAsync(host, cancellationToken));
}
