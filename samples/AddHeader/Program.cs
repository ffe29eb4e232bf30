// AddHeader: the smallest useful addon. Every request that passes through the proxy, plain HTTP or intercepted
// HTTPS, reaches its origin with an extra "X-Interpose: sample" header.
//
// Usage: dotnet run --project samples/AddHeader -- [PORT] [--home DIR]
//   PORT    where to listen on 127.0.0.1 (default 8080; 0 picks a free port)
//   --home  the directory holding the Interpose CA (default: $INTERPOSE_HOME, else ~/.config/interpose)
// Try:    curl --proxy http://127.0.0.1:8080 --cacert DIR/interpose-ca.pem https://example.com/
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

// ConfigDirectory null means $INTERPOSE_HOME or the per-user default; the CA is created there on first run.
var options = new ProxyOptions { ConfigDirectory = home };
options.ListenEndpoints.Clear();
options.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, port));
options.Addons.Add(new AddHeaderAddon("X-Interpose", "sample"));

// Ctrl+C and SIGTERM stop gracefully: exchanges in flight finish, then the process exits with 0.
using var stop = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
await using var proxy = new ProxyServer(options);
await proxy.StartAsync();
await Console.Error.WriteLineAsync($"Interpose listening on {proxy.Endpoints[0]}");
await Console.Error.WriteLineAsync($"CA: {proxy.CertificateAuthority!.CertificatePath}");

await proxy.RunAsync(stop.Token);

/// <summary>Adds one header to every request, before its body is read: the cheapest hook there is.</summary>
internal sealed class AddHeaderAddon(string name, string value) : ProxyAddon
{
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        exchange.Request.Headers.Add(name, value);
        return ValueTask.CompletedTask;
    }
}
