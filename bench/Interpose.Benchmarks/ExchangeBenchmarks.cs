using System.Net;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using Interpose.Proxy;

namespace Interpose.Benchmarks;

/// <summary>
/// The cost of one HTTP/1.1 exchange through a real in-process <see cref="ProxyServer"/> on loopback, keep-alive on
/// both sides: a raw-socket client sends a fixed absolute-form GET and reads a fixed-size response, which a tiny
/// raw-socket origin answers with 1 KiB and a Content-Length.
/// </summary>
/// <remarks>
/// MemoryDiagnoser counts every allocation in the process (client, origin and proxy run here together), so the
/// proxy's own allocation per exchange is a variant's "Allocated" minus the <see cref="Direct"/> baseline's. The
/// client and origin are written not to allocate per exchange (pre-sized buffers, ValueTask socket calls) so that
/// the baseline stays near zero and the difference is the proxy.
/// </remarks>
[MemoryDiagnoser]
public class ExchangeBenchmarks
{
    /// <summary>The origin's body size: a small API-like response.</summary>
    private const int BodySize = 1024;

    private readonly byte[] _clientBuffer = new byte[64 * 1024];
    private string _home = string.Empty;
    private Socket _originListener = null!;
    private Task _originLoop = Task.CompletedTask;
    private CancellationTokenSource _stop = null!;
    private ProxyServer _plainProxy = null!;
    private ProxyServer _addonProxy = null!;
    private Connection _direct = null!;
    private Connection _viaProxy = null!;
    private Connection _viaProxyWithAddon = null!;

    /// <summary>Requests the origin saw with the addon's header: proof, checked at setup, that the hook ran.</summary>
    private static int _headersSeen;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _home = Path.Combine(Path.GetTempPath(), "interpose-bench-" + Guid.NewGuid().ToString("N"));
        _stop = new CancellationTokenSource();
        _originListener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _originListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _originListener.Listen(16);
        var originPort = ((IPEndPoint)_originListener.LocalEndPoint!).Port;
        _originLoop = OriginAcceptLoopAsync(_originListener, _stop.Token);

        _plainProxy = await StartProxyAsync(null);
        _addonProxy = await StartProxyAsync(new AddHeaderAddon());

        var request = Encoding.ASCII.GetBytes(
            $"GET http://localhost:{originPort}/bench HTTP/1.1\r\nHost: localhost:{originPort}\r\nUser-Agent: interpose-bench\r\nAccept: */*\r\n\r\n");
        _direct = await Connection.OpenAsync(originPort, request, _clientBuffer);
        _viaProxy = await Connection.OpenAsync(_plainProxy.Endpoints[0].Port, request, _clientBuffer);
        var seenBefore = Volatile.Read(ref _headersSeen);
        _viaProxyWithAddon = await Connection.OpenAsync(_addonProxy.Endpoints[0].Port, request, _clientBuffer);
        if (seenBefore != 0 || Volatile.Read(ref _headersSeen) == 0)
        {
            throw new InvalidOperationException("The addon's header must reach the origin on the addon path only.");
        }
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _direct.Dispose();
        _viaProxy.Dispose();
        _viaProxyWithAddon.Dispose();
        await _plainProxy.DisposeAsync();
        await _addonProxy.DisposeAsync();
        await _stop.CancelAsync();
        _originListener.Dispose();
        await _originLoop;
        _stop.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    /// <summary>Client straight to the origin: what the client and origin themselves cost.</summary>
    [Benchmark(Baseline = true)]
    public ValueTask Direct() => _direct.ExchangeAsync(_clientBuffer);

    /// <summary>Through the proxy with no addon: the forwarding path alone.</summary>
    [Benchmark]
    public ValueTask Proxy() => _viaProxy.ExchangeAsync(_clientBuffer);

    /// <summary>Through the proxy with one addon that adds a request header: the cost of running hooks.</summary>
    [Benchmark]
    public ValueTask ProxyWithHeaderAddon() => _viaProxyWithAddon.ExchangeAsync(_clientBuffer);

    private async Task<ProxyServer> StartProxyAsync(ProxyAddon? addon)
    {
        var options = new ProxyOptions
        {
            ConfigDirectory = _home,
            Resolver = static (_, _) => ValueTask.FromResult(new[] { IPAddress.Loopback }),
        };
        options.ListenEndpoints.Clear();
        options.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        if (addon is not null)
        {
            options.Addons.Add(addon);
        }

        var server = new ProxyServer(options);
        await server.StartAsync();
        return server;
    }

    private static async Task OriginAcceptLoopAsync(Socket listener, CancellationToken cancellationToken)
    {
        var response = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {BodySize}\r\n\r\n")
            .Concat(Enumerable.Repeat((byte)'x', BodySize)).ToArray();
        var connections = new List<Task>();
        while (true)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                break;
            }

            connections.Add(ServeAsync(socket, response));
        }

        await Task.WhenAll(connections);
    }

    /// <summary>Answers each request head (no request bodies here) with the fixed response, keep-alive.</summary>
    private static async Task ServeAsync(Socket socket, byte[] response)
    {
        using (socket)
        {
            var buffer = new byte[16 * 1024];
            var filled = 0;
            try
            {
                while (true)
                {
                    var n = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
                    if (n == 0)
                    {
                        return;
                    }

                    filled += n;
                    int end;
                    while ((end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) >= 0)
                    {
                        if (buffer.AsSpan(0, end).IndexOf("\r\nX-Interpose: bench"u8) >= 0)
                        {
                            Interlocked.Increment(ref _headersSeen);
                        }

                        await socket.SendAsync(response, SocketFlags.None);
                        var consumed = end + 4;
                        buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                        filled -= consumed;
                    }
                }
            }
            catch (SocketException)
            {
                // The peer went away: the end of a benchmark connection.
            }
        }
    }

    /// <summary>A keep-alive client connection that knows how long each response is.</summary>
    private sealed class Connection : IDisposable
    {
        private readonly Socket _socket;
        private readonly byte[] _request;
        private int _responseLength;

        private Connection(Socket socket, byte[] request)
        {
            _socket = socket;
            _request = request;
        }

        public static async Task<Connection> OpenAsync(int port, byte[] request, byte[] buffer)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            var connection = new Connection(socket, request);

            // The first exchange measures the response (head as this path sends it, plus the body); it is the same
            // for every later exchange on the path, so the measured loop reads exactly that many bytes.
            connection._responseLength = await connection.MeasureFirstResponseAsync(buffer);
            for (var i = 0; i < 3; i++)
            {
                await connection.ExchangeAsync(buffer);
            }

            return connection;
        }

        public async ValueTask ExchangeAsync(byte[] buffer)
        {
            await _socket.SendAsync(_request, SocketFlags.None);
            var read = 0;
            while (read < _responseLength)
            {
                var n = await _socket.ReceiveAsync(buffer.AsMemory(read, _responseLength - read), SocketFlags.None);
                if (n == 0)
                {
                    throw new InvalidOperationException("The connection closed mid-response: keep-alive was not kept.");
                }

                read += n;
            }
        }

        public void Dispose() => _socket.Dispose();

        private async Task<int> MeasureFirstResponseAsync(byte[] buffer)
        {
            await _socket.SendAsync(_request, SocketFlags.None);
            var read = 0;
            int headEnd;
            while ((headEnd = buffer.AsSpan(0, read).IndexOf("\r\n\r\n"u8)) < 0)
            {
                read += await ReceiveSomeAsync(buffer, read);
            }

            var head = Encoding.ASCII.GetString(buffer, 0, headEnd);
            if (!head.StartsWith("HTTP/1.1 200 ", StringComparison.Ordinal) || !head.Contains($"Content-Length: {BodySize}", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException("Unexpected response head: " + head);
            }

            var total = headEnd + 4 + BodySize;
            while (read < total)
            {
                read += await ReceiveSomeAsync(buffer, read);
            }

            return read == total ? total : throw new InvalidOperationException("More bytes than one response arrived.");
        }

        private async Task<int> ReceiveSomeAsync(byte[] buffer, int offset)
        {
            var n = await _socket.ReceiveAsync(buffer.AsMemory(offset), SocketFlags.None);
            return n > 0 ? n : throw new InvalidOperationException("The connection closed before a whole response arrived.");
        }
    }

    /// <summary>Adds one request header: the cheapest useful hook, as in samples/AddHeader.</summary>
    private sealed class AddHeaderAddon : ProxyAddon
    {
        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            exchange.Request.Headers.Add("X-Interpose", "bench");
            return ValueTask.CompletedTask;
        }
    }
}
