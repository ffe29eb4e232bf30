// MockEndpoint: answer one endpoint from the proxy itself. GET /api/status on any host (http or intercepted https)
// gets a canned JSON response and the origin is never contacted; every other request passes through untouched.
// Handy to stub a backend that is down, or to pin a response while testing a client.
//
// Usage: dotnet run --project samples/MockEndpoint -- [PORT] [--home DIR]
//   PORT    where to listen on 127.0.0.1 (default 8080; 0 picks a free port)
//   --home  the directory holding the Interpose CA (default: $INTERPOSE_HOME, else ~/.config/interpose)
// Try:    curl --proxy http://127.0.0.1:8080 --cacert DIR/interpose-ca.pem https://example.com/api/status
using System.Net;
using System.Runtime.InteropServices;
using Interpose.Proxy;

var port = ProxyOptions.DefaultPort;
string? home = null;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--home" && i + 1 < args.Length)
    {
        home = args[++i];
    }
    else
    {
        port = int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture);
    }
}

var options = new ProxyOptions { ConfigDirectory = home };
options.ListenEndpoints.Clear();
options.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, port));
options.Addons.Add(new StatusMock());

// Ctrl+C and SIGTERM stop gracefully: exchanges in flight finish, then the process exits with 0.
using var stop = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
await using var proxy = new ProxyServer(options);
await proxy.StartAsync();
await Console.Error.WriteLineAsync($"Interpose listening on {proxy.Endpoints[0]}");
await Console.Error.WriteLineAsync($"CA: {proxy.CertificateAuthority!.CertificatePath}");

await proxy.RunAsync(stop.Token);

/// <summary>Answers GET /api/status (any host, any query) without contacting the origin.</summary>
internal sealed class StatusMock : ProxyAddon
{
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        // Path holds the query too; match on the part before it.
        var path = exchange.Request.Path.AsSpan();
        var query = path.IndexOf('?');
        if (exchange.Request.Method == "GET" && (query < 0 ? path : path[..query]).SequenceEqual("/api/status"))
        {
            // Answering in the headers hook means the proxy never reads a body for it nor opens an origin connection.
            var response = HttpResponse.Json(200, new { status = "ok", mocked = true, host = exchange.Request.Host });
            response.Headers.Add("X-Interpose-Mock", "status");
            exchange.Respond(response);
        }

        return ValueTask.CompletedTask;
    }
}
