// LogJsonBodies: record the JSON traffic of one host. For requests to HOST (http or intercepted https), JSON request
// and response bodies are buffered so the addon can read them; each finished exchange becomes one JSON line
// {method, url, status, requestBody, responseBody} on stdout or in a file. Other hosts and non-JSON bodies still
// stream through without being buffered.
//
// Usage: dotnet run --project samples/LogJsonBodies -- HOST [PORT] [--out FILE] [--home DIR]
//   HOST    the host whose JSON bodies are logged, e.g. api.example.com
//   PORT    where to listen on 127.0.0.1 (default 8080; 0 picks a free port)
//   --out   append the lines to FILE instead of stdout
//   --home  the directory holding the Interpose CA (default: $INTERPOSE_HOME, else ~/.config/interpose)
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Interpose.Proxy;

var port = ProxyOptions.DefaultPort;
string? home = null, outFile = null, host = null;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--home" && i + 1 < args.Length)
    {
        home = args[++i];
    }
    else if (args[i] == "--out" && i + 1 < args.Length)
    {
        outFile = args[++i];
    }
    else if (host is null)
    {
        host = args[i];
    }
    else
    {
        port = int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture);
    }
}

if (host is null)
{
    await Console.Error.WriteLineAsync("usage: LogJsonBodies HOST [PORT] [--out FILE] [--home DIR]");
    return 2;
}

await using var output = outFile is null ? Console.Out : new StreamWriter(outFile, append: true) { AutoFlush = true };
var options = new ProxyOptions { ConfigDirectory = home };
options.ListenEndpoints.Clear();
options.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, port));
options.Addons.Add(new JsonBodyLogger(host, output));

// Ctrl+C and SIGTERM stop gracefully: exchanges in flight finish, then the process exits with 0.
using var stop = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
await using var proxy = new ProxyServer(options);
await proxy.StartAsync();
await Console.Error.WriteLineAsync($"Interpose listening on {proxy.Endpoints[0]}");
await Console.Error.WriteLineAsync($"CA: {proxy.CertificateAuthority!.CertificatePath}");

await proxy.RunAsync(stop.Token);
return 0;

/// <summary>Buffers the JSON bodies of one host's exchanges and writes each exchange as one JSON line.</summary>
internal sealed class JsonBodyLogger(string host, TextWriter output) : ProxyAddon
{
    private readonly SemaphoreSlim _writing = new(1, 1);

    // Bodies are only buffered when asked for, and only in the headers hooks, before the proxy reads them.
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        exchange.Request.BufferBody = IsLogged(exchange) && IsJson(exchange.Request);
        return ValueTask.CompletedTask;
    }

    public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        exchange.Response!.BufferBody = IsLogged(exchange) && IsJson(exchange.Response);
        return ValueTask.CompletedTask;
    }

    // Done runs last for every exchange, failed or not, after the response went to the client.
    public override async ValueTask DoneAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        if (!IsLogged(exchange))
        {
            return;
        }

        var line = JsonSerializer.Serialize(new
        {
            method = exchange.Request.Method,
            url = exchange.Request.Url.ToString(),
            status = exchange.Response?.StatusCode,
            requestBody = BodyOf(exchange.Request),
            responseBody = exchange.Response is { } response ? BodyOf(response) : null,
        });

        // Exchanges finish concurrently; one writer at a time keeps lines whole.
        await _writing.WaitAsync(cancellationToken);
        try
        {
            await output.WriteLineAsync(line);
        }
        finally
        {
            _writing.Release();
        }
    }

    private bool IsLogged(HttpExchange exchange) => string.Equals(exchange.Request.Host, host, StringComparison.OrdinalIgnoreCase);

    // application/json, application/problem+json, text/json...
    private static bool IsJson(HttpMessage message) =>
        message.Headers.Get("Content-Type")?.Contains("json", StringComparison.OrdinalIgnoreCase) == true;

    // The body as a JSON value when it parses; an empty or non-JSON body is null (it was not buffered, or it is not JSON).
    private static JsonNode? BodyOf(HttpMessage message)
    {
        if (!message.HasBody || message.Body.IsEmpty || !IsJson(message))
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(message.Body.Span);
        }
        catch (JsonException)
        {
            return JsonValue.Create(message.GetText());
        }
    }
}
