using System.Globalization;
using System.Net;
using System.Net.Sockets;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Interpose.Cli;

/// <summary>
/// <c>interpose run --metrics HOST:PORT</c>: the proxy's <c>Interpose</c> meter (and the runtime's own
/// <c>System.Runtime</c> meter) as Prometheus text at <c>/metrics</c>.
/// </summary>
/// <remarks>
/// Served by OpenTelemetry's maintained Prometheus exporter on <see cref="HttpListener"/> rather than by hand-written
/// exposition text (escaping, histogram buckets, _total suffixes and content negotiation are the exporter's job) and
/// rather than its ASP.NET Core variant, which would load the whole ASP.NET Core shared framework (and its memory)
/// into a CLI whose peak RSS is one of its selling points. The library itself only uses
/// <see cref="System.Diagnostics.Metrics"/>: embedders pick their own exporter.
/// </remarks>
internal static class MetricsExporter
{
    /// <summary>Starts the exporter on <paramref name="endPoint"/>.</summary>
    /// <exception cref="CliUsageException">The address cannot be listened on (in use, not this machine's).</exception>
    public static MeterProvider Start(IPEndPoint endPoint)
    {
        try
        {
            return Sdk.CreateMeterProviderBuilder()
                .AddMeter("Interpose", "System.Runtime")
                .AddPrometheusHttpListener(o =>
                {
                    o.Host = HostText(endPoint);
                    o.Port = endPoint.Port;
                    o.ScrapeEndpointPath = "/metrics";

                    // Every scrape sees the counters of that moment (the default caches answers for 300 ms).
                    o.ScrapeResponseCacheDurationMilliseconds = 0;
                })
                .Build();
        }
        catch (InvalidOperationException ex) when (ex.InnerException is HttpListenerException listen)
        {
            // The exporter wraps the listener's failure; the user's to fix, as a proxy port in use is: one line, exit 2.
            throw new CliUsageException($"--metrics {HostText(endPoint)}:{endPoint.Port.ToString(CultureInfo.InvariantCulture)}: {listen.Message}");
        }
    }

    public static string Url(IPEndPoint endPoint) =>
        "http://" + HostText(endPoint) + ":" + endPoint.Port.ToString(CultureInfo.InvariantCulture) + "/metrics";

    private static string HostText(IPEndPoint endPoint) =>
        endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? "[" + endPoint.Address + "]" : endPoint.Address.ToString();
}
