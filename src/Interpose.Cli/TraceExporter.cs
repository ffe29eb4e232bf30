using Interpose.Proxy;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Trace;

namespace Interpose.Cli;

/// <summary>
/// <c>interpose run --otlp ENDPOINT</c>: the exchanges' activities (<see cref="ProxyServer.ActivitySourceName"/>) to an
/// OpenTelemetry collector over OTLP/HTTP with protobuf (the OTLP specification's default transport for HTTP), batched
/// by the exporter and flushed when the command stops. The library only uses <see cref="System.Diagnostics.ActivitySource"/>:
/// embedders pick their own exporter.
/// </summary>
internal static class TraceExporter
{
    /// <summary>OTLP/HTTP's path for traces (OTLP specification, "OTLP/HTTP Request").</summary>
    private const string TracesPath = "/v1/traces";

    /// <summary>Starts exporting; dispose the result after the proxy stopped, to send what is batched.</summary>
    public static TracerProvider Start(Uri endpoint) =>
        Sdk.CreateTracerProviderBuilder()
            .AddSource(ProxyServer.ActivitySourceName)
            .AddOtlpExporter(o =>
            {
                o.Endpoint = endpoint;
                o.Protocol = OtlpExportProtocol.HttpProtobuf;
            })
            .Build();

    /// <summary>
    /// An http(s) URL; a bare collector address (no path, e.g. <c>http://127.0.0.1:4318</c>) gets <c>/v1/traces</c>, as
    /// OTEL_EXPORTER_OTLP_ENDPOINT does.
    /// </summary>
    /// <exception cref="CliUsageException">Not an absolute http or https URL.</exception>
    public static Uri ParseEndpoint(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new CliUsageException($"--otlp: '{text}' is not an http or https URL (e.g. http://127.0.0.1:4318)");
        }

        return uri.AbsolutePath is "/" or "" ? new Uri(uri, TracesPath) : uri;
    }
}
