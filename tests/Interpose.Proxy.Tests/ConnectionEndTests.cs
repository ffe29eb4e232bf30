using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The tests' "closed without an answer" check (<see cref="RawClient.ReadUntilClosedAsync"/>) against a peer that
/// resets: an answer followed by a reset is an answer; only a reset with nothing before it is no answer.
/// </summary>
public sealed class ConnectionEndTests
{
    [Fact]
    public async Task A_reset_after_a_503_keeps_the_503()
    {
        var end = await ReadFromPeerThatResetsAsync("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");

        Assert.True(end.Reset);
        Assert.False(end.Unanswered);
        Assert.StartsWith("HTTP/1.1 503 ", end.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reset_with_nothing_before_it_is_unanswered()
    {
        var end = await ReadFromPeerThatResetsAsync("");

        Assert.True(end.Reset);
        Assert.True(end.Unanswered);
    }

    [Fact]
    public async Task An_orderly_close_after_an_answer_is_not_a_reset()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using (var server = await listener.AcceptSocketAsync())
        {
            await server.SendAsync("HTTP/1.1 200 OK\r\n\r\n"u8.ToArray());
            server.Shutdown(SocketShutdown.Both);
        }

        var end = await RawClient.ReadUntilClosedAsync(client.GetStream());

        Assert.False(end.Reset);
        Assert.Equal("HTTP/1.1 200 OK\r\n\r\n", end.Text);
    }

    /// <summary>A peer that reads nothing, sends <paramref name="answer"/>, then aborts (SO_LINGER 0: a reset).</summary>
    private static async Task<ConnectionEnd> ReadFromPeerThatResetsAsync(string answer)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var stream = client.GetStream();
        await stream.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        using (var server = await listener.AcceptSocketAsync())
        {
            if (answer.Length > 0)
            {
                await server.SendAsync(Encoding.ASCII.GetBytes(answer));
            }

            server.LingerState = new LingerOption(enable: true, seconds: 0);
            server.Close();
        }

        return await RawClient.ReadUntilClosedAsync(stream);
    }
}
