using System.Diagnostics.Metrics;
using System.Net.Security;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// An origin that sends more than the response it owes (RFC 9112 §9.3: a response answers the oldest outstanding
/// request): the extra bytes must never reach the next request sent on that connection, whoever sends it.
/// </summary>
public sealed class ResponseQueuePoisoningTests(ITestOutputHelper output)
{
    /// <summary>What the origin appends: a complete response that answers nothing.</summary>
    private const string Poison = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned";

    /// <summary>Bounds every wait of these tests: a regression fails them instead of hanging them.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public enum Framing
    {
        ContentLength,
        Chunked,
    }

    [Theory]
    [InlineData(Framing.ContentLength, false)]
    [InlineData(Framing.Chunked, false)]
    [InlineData(Framing.ContentLength, true)]
    [InlineData(Framing.Chunked, true)]
    public async Task Bytes_after_the_end_of_a_response_close_the_origin_connection(Framing framing, bool tls)
    {
        await using var origin = PoisoningOrigin(framing, tls, poisonLater: null);
        await AssertNextRequestsGetTheirOwnAnswersAsync(origin, tls);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bytes_sent_later_on_an_idle_pooled_connection_close_it(bool tls)
    {
        // The unsolicited response comes only after the client has its answer, when the proxy has (or is about to
        // have) the connection back in its pool.
        var firstAnswered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = PoisoningOrigin(Framing.ContentLength, tls, poisonLater: firstAnswered.Task);
        await AssertNextRequestsGetTheirOwnAnswersAsync(origin, tls, firstAnswered);
    }

    /// <summary>
    /// First request, then (after the proxy saw the poison) one request from the same client and one from another:
    /// each gets the origin's real answer, on a fresh origin connection.
    /// </summary>
    private async Task AssertNextRequestsGetTheirOwnAnswersAsync(RawOrigin origin, bool tls, TaskCompletionSource? firstAnswered = null)
    {
        await using var proxy = await TestProxy.StartAsync(output);
        var detected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = OnUnsolicited(proxy.Server.Metrics!.Meter, detected);
        using var first = proxy.CreateClient();
        using var second = proxy.CreateClient();
        var scheme = tls ? "https" : "http";
        string Url(string path) => $"{scheme}://localhost:{origin.Port}{path}";

        Assert.Equal("answer to /first", await first.GetStringAsync(Url("/first")).WaitAsync(Bound));
        firstAnswered?.SetResult();
        await detected.Task.WaitAsync(Bound);

        Assert.Equal("answer to /again", await first.GetStringAsync(Url("/again")).WaitAsync(Bound));
        Assert.Equal("answer to /other", await second.GetStringAsync(Url("/other")).WaitAsync(Bound));
        Assert.True(origin.AcceptedConnections >= 2, "the poisoned connection carried another request");
    }

    /// <summary>
    /// Answers each request with "answer to PATH", in Content-Length framing; its first connection's first answer
    /// (in <paramref name="framing"/>) is followed by <see cref="Poison"/>: in the same write, or once
    /// <paramref name="poisonLater"/> completes.
    /// </summary>
    private static RawOrigin PoisoningOrigin(Framing framing, bool tls, Task? poisonLater)
    {
        var connections = 0;
        return new RawOrigin(async network =>
        {
            var poison = Interlocked.Increment(ref connections) == 1;
            Stream stream = network;
            SslStream? ssl = null;
            if (tls)
            {
                ssl = new SslStream(network);
                using var certificate = TestPki.Issue(TestPki.OriginRoot, "localhost");
                await ssl.AuthenticateAsServerAsync(certificate);
                stream = ssl;
            }

            await using (ssl)
            {
                while (true)
                {
                    var head = await RawOrigin.ReadHeadAsync(stream);
                    var body = "answer to " + head.Split(' ')[1];
                    var answer = poison && framing == Framing.Chunked
                        ? $"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{body.Length:x}\r\n{body}\r\n0\r\n\r\n"
                        : $"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\n\r\n{body}";
                    if (poison && poisonLater is null)
                    {
                        answer += Poison;
                    }

                    await stream.WriteAsync(Encoding.Latin1.GetBytes(answer));
                    if (poison && poisonLater is not null)
                    {
                        await poisonLater;
                        await stream.WriteAsync(Encoding.Latin1.GetBytes(Poison));
                    }

                    poison = false;
                }
            }
        });
    }

    private static MeterListener OnUnsolicited(Meter meter, TaskCompletionSource detected)
    {
        var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "interpose.upstream.unsolicited")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, _, _) => detected.TrySetResult());
        listener.Start();
        return listener;
    }
}
