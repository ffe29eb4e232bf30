using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// RFC 9112 §9.6: a proxy that answers a request without reading its whole body, and closes, closes in stages (a
/// half-close, then reading and discarding until the client closes): closed at once with bytes unread, the kernel sends
/// a reset after the answer, which can destroy the answer before the client reads it.
/// </summary>
public sealed class LingeringCloseTests(ITestOutputHelper output)
{
    /// <summary>More than the proxy drains to keep a connection (1 MiB), and more than loopback socket buffers hold
    /// before the proxy answers, so that unread bytes are in its receive buffer when it closes.</summary>
    private const int BodyBytes = 2 * 1024 * 1024;

    public enum Refusal
    {
        /// <summary>A hook answers a request waiting for 100-continue (its body is never read).</summary>
        HookAnswerToExpectContinue,

        /// <summary>A hook answers a request whose body is over the drain limit (not read either).</summary>
        HookAnswerOverTheDrainLimit,

        /// <summary>The proxy asks for credentials (407) before reading anything of the body.</summary>
        ProxyAuthenticationRequired,
    }

    [Theory]
    [InlineData(Refusal.HookAnswerToExpectContinue)]
    [InlineData(Refusal.HookAnswerOverTheDrainLimit)]
    [InlineData(Refusal.ProxyAuthenticationRequired)]
    public async Task A_client_still_sending_its_body_reads_the_whole_answer_and_an_orderly_close(Refusal refusal)
    {
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            // Nothing here may depend on how long the proxy lingers: the clock stands still, the client's close ends it.
            o.TimeProvider = new ManualClock();
            if (refusal == Refusal.ProxyAuthenticationRequired)
            {
                o.Authentication.Add("alice:s3cret");
            }
            else
            {
                o.Addons.Add(new Hooks { OnRequest = e => e.Respond(HttpResponse.Text(403, "blocked by policy")) });
            }
        });
        await using var client = (NetworkStream)await RawClient.ConnectAsync(proxy);
        var expect = refusal == Refusal.HookAnswerToExpectContinue ? "Expect: 100-continue\r\n" : "";

        // The body follows the head at once (a client need not wait for the 100, RFC 9110 §10.1.1), while the answer is read.
        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://localhost:9/upload HTTP/1.1\r\nHost: localhost:9\r\n{expect}Content-Length: {BodyBytes}\r\n\r\n"));
        var upload = SendBodyAsync(client);
        var end = await RawClient.ReadUntilClosedAsync(client);
        await upload;

        // The whole answer (its body as long as its Content-Length says), then an orderly close, not a reset.
        Assert.StartsWith(refusal == Refusal.ProxyAuthenticationRequired ? "HTTP/1.1 407 " : "HTTP/1.1 403 ", end.Text, StringComparison.Ordinal);
        var headEnd = end.Text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(headEnd > 0, "no complete head: " + end.Text);
        var length = Regex.Match(end.Text[..headEnd], @"\r\nContent-Length: (\d+)", RegexOptions.IgnoreCase);
        Assert.True(length.Success, "no Content-Length: " + end.Text);
        Assert.Equal(int.Parse(length.Groups[1].Value, CultureInfo.InvariantCulture), end.Text.Length - headEnd - 4);
        Assert.False(end.Reset, "the answer was followed by a reset");
    }

    private static async Task SendBodyAsync(NetworkStream client)
    {
        var chunk = new byte[64 * 1024];
        try
        {
            for (var sent = 0; sent < BodyBytes; sent += chunk.Length)
            {
                await client.WriteAsync(chunk);
            }
        }
        catch (IOException)
        {
            // The proxy reset the connection: the assertions on what was read say so.
        }
    }
}
