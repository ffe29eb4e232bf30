using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Certificates;
using Interpose.Proxy.Internal;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Proxy.Tests.Pipeline;

/// <summary>
/// The proxy's layers from the HTTP/1.1 server connection down to the upstream, run over in-memory connections: a
/// client connection is a pair of pipes, every origin connection is one too, answered by the test's handler. No
/// listener, no socket, no port.
/// </summary>
public sealed class InMemoryProxy : IAsyncDisposable
{
    /// <summary>Bounds every wait: a regression fails a test instead of hanging it.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly CertificateAuthority _authority;
    private readonly LeafCertificateCache _leaves;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<Task> _origins = new();
    private readonly ProxyRuntime _runtime;

    /// <param name="origin">Serves one origin connection: its "host:port" and its stream.</param>
    /// <param name="configure">Changes the options (addons, timeouts).</param>
    public InMemoryProxy(Func<string, Stream, Task> origin, Action<ProxyOptions>? configure = null)
    {
        _authority = CertificateAuthority.CreateEphemeral(CertificateKeyAlgorithm.EcdsaP256, TimeProvider.System);
        _leaves = new LeafCertificateCache(_authority);
        var options = new ProxyOptions
        {
            CertificateAuthority = _authority,
            Resolver = static (_, _) => ValueTask.FromResult(new[] { IPAddress.Loopback }),
        };
        configure?.Invoke(options);
        _runtime = new ProxyRuntime(options, NullLoggerFactory.Instance, _leaves, _stop.Token, _stop.Token, "Interpose.Tests.InMemory")
        {
            Dialer = (key, _) =>
            {
                Dialed.Enqueue(key.Host + ":" + key.Port);
                if (RefuseConnections)
                {
                    throw new SocketException((int)SocketError.ConnectionRefused);
                }

                var connection = new InMemoryConnection();
                _origins.Enqueue(Task.Run(async () =>
                {
                    await using var stream = connection.Server;
                    await origin(key.Host + ":" + key.Port, stream);
                }, CancellationToken.None));
                return ValueTask.FromResult(connection.Client);
            },
        };
    }

    /// <summary>Every origin the proxy connected to, as "host:port", in order.</summary>
    public ConcurrentQueue<string> Dialed { get; } = new();

    /// <summary>When set, every origin connection is refused (ECONNREFUSED).</summary>
    public bool RefuseConnections { get; set; }

    /// <summary>
    /// Opens a client connection, sends <paramref name="request"/> (Latin-1) and returns everything the proxy sent back
    /// until it closed the connection (send <c>Connection: close</c> to have it close after one exchange).
    /// </summary>
    public async Task<string> SendAsync(string request)
    {
        var connection = new InMemoryConnection();
        var serving = ServeAsync(connection.Server);
        await connection.Client.WriteAsync(Encoding.Latin1.GetBytes(request)).AsTask().WaitAsync(Bound);
        var received = new MemoryStream();
        await connection.Client.CopyToAsync(received).WaitAsync(Bound);
        await serving.WaitAsync(Bound);
        await connection.Client.DisposeAsync();
        return Encoding.Latin1.GetString(received.ToArray());
    }

    /// <summary>Waits for every origin handler to end (they end when the proxy closes their connections).</summary>
    public Task OriginsDoneAsync() => Task.WhenAll(_origins).WaitAsync(Bound);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _runtime.Pool.DisposeAsync();
        _runtime.Metrics.Dispose();
        _runtime.HeapTrim.Dispose();
        _leaves.Dispose();
        _authority.Dispose();
        _stop.Dispose();
    }

    private async Task ServeAsync(Stream stream)
    {
        await Task.Yield();
        await using var transport = new Transport(null, stream);
        await using var flow = new ClientFlow(_runtime, transport, new ClientConnection(_runtime.NextClientId(), null, null));
        await new HttpProxyFrontend(flow).RunAsync();
    }
}
