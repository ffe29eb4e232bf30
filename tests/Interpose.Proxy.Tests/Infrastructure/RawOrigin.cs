using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>
/// A byte-scriptable origin on 127.0.0.1: each accepted connection runs the test's handler over the raw socket
/// stream. It records every connection it accepted, so a test can assert that nothing reached it.
/// </summary>
public sealed class RawOrigin : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<NetworkStream, Task> _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly List<(TcpClient Client, Task Run)> _connections = [];
    private readonly MemoryStream _received = new();
    private int _accepted;

    public RawOrigin(Func<NetworkStream, Task> handler)
    {
        _handler = handler;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _loop = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int AcceptedConnections => Volatile.Read(ref _accepted);

    /// <summary>Every byte the origin's recording handlers received, on all connections, in arrival order (Latin-1).</summary>
    public string ReceivedText
    {
        get
        {
            lock (_received)
            {
                return Encoding.Latin1.GetString(_received.ToArray());
            }
        }
    }

    /// <summary>
    /// An origin that answers every request head it receives with <paramref name="response"/> and records every byte
    /// (requests must have no body), so that a test can assert exactly what reached it. A null response: never answer.
    /// </summary>
    public static RawOrigin Recording(string? response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    {
        RawOrigin? origin = null;
        origin = new RawOrigin(async stream =>
        {
            var head = new List<byte>();
            var buffer = new byte[4096];
            int n;
            while ((n = await stream.ReadBoundedAsync(buffer)) > 0)
            {
                origin!.Record(buffer.AsSpan(0, n));
                for (var i = 0; i < n; i++)
                {
                    var b = buffer[i];
                    head.Add(b);
                    var c = head.Count;
                    if (c >= 4 && head[c - 4] == '\r' && head[c - 3] == '\n' && head[c - 2] == '\r' && head[c - 1] == '\n')
                    {
                        head.Clear();
                        if (response is not null)
                        {
                            await stream.WriteAsync(Encoding.Latin1.GetBytes(response));
                        }
                    }
                }
            }
        });
        return origin;
    }

    private void Record(ReadOnlySpan<byte> bytes)
    {
        lock (_received)
        {
            _received.Write(bytes);
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            lock (_connections)
            {
                _connections.Add((client, RunAsync(client)));
            }
        }
    }

    private async Task RunAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                await _handler(client.GetStream());
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // The proxy closed the connection: a normal end for a test origin.
            }
            catch (TimeoutException)
            {
                // A read got nothing for BoundedRead.Limit: the origin closes this connection, as a real origin's idle
                // timeout would, so that whatever the test awaits through it ends instead of hanging.
            }
        }
    }

    /// <summary>Reads a request head (through the blank line) byte by byte, so nothing after it is consumed.</summary>
    public static async Task<string> ReadHeadAsync(Stream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            var n = await stream.ReadBoundedAsync(one);
            if (n == 0)
            {
                throw new EndOfStreamException("closed before the end of the head: " + Encoding.Latin1.GetString(bytes.ToArray()));
            }

            bytes.Add(one[0]);
            var c = bytes.Count;
            if (c >= 4 && bytes[c - 4] == '\r' && bytes[c - 3] == '\n' && bytes[c - 2] == '\r' && bytes[c - 1] == '\n')
            {
                return Encoding.Latin1.GetString(bytes.ToArray());
            }
        }
    }

    /// <summary>Keeps a connection open until the peer closes it (or the origin is disposed, or <see cref="BoundedRead.Limit"/> passes without a byte).</summary>
    public static async Task WaitForCloseAsync(Stream stream) => await stream.DrainBoundedAsync(4096);

    public static async Task ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyBoundedAsync(buffer);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        (TcpClient Client, Task Run)[] running;
        lock (_connections)
        {
            running = [.. _connections];
        }

        // Handlers may wait on connections the proxy keeps pooled: closing the sockets ends them.
        foreach (var (client, _) in running)
        {
            client.Dispose();
        }

        await Task.WhenAll(running.Select(r => r.Run));
        _stop.Dispose();
    }
}
