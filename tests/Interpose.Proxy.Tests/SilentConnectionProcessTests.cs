using System.Diagnostics;
using System.Net.Sockets;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The real <c>interpose run</c> closes a connection that never sends a byte after the request-head timeout (30 s),
/// not the keep-alive timeout (130 s). The command has no option to shorten timeouts, so this waits the real 30 s: it
/// is a class of its own so that it runs alongside the others.
/// </summary>
public sealed class SilentConnectionProcessTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>
    /// Past the 30 s request-head timeout with room for a loaded machine, and well short of the 130 s keep-alive
    /// timeout a silent connection was held for before: a read still open at this bound fails the test.
    /// </summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(100);

    private readonly string _home = Directory.CreateTempSubdirectory("interpose-silent-").FullName;

    [Fact]
    public async Task A_connection_that_never_sends_a_byte_is_closed_after_the_request_head_timeout()
    {
        await using var proxy = await InterposeProcess.StartAsync(Path.Combine(_home, "home"));
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", proxy.Port);
        var held = Stopwatch.StartNew();

        using var bound = new CancellationTokenSource(Bound);
        var received = await socket.ReceiveAsync(new byte[256], SocketFlags.None, bound.Token);
        held.Stop();

        output.WriteLine($"silent connection closed by the proxy after {held.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal(0, received); // closed, unanswered: it never sent a request
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }
}
