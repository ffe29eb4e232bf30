using System.Text;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests.Pipeline;

/// <summary>
/// The exchange pipeline without sockets: the HTTP/1.1 server connection, the pipeline and the upstream over
/// in-memory connections. Each test names the step it checks.
/// </summary>
public sealed class PipelineTests
{
    [Fact]
    public async Task Hooks_change_the_request_and_the_response()
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = new InMemoryProxy(EchoOrigin(seen), o => o.Addons.Add(new Hooks
        {
            OnRequestHeaders = e =>
            {
                e.Request.Headers.Add("X-Added", "yes");
                e.Request.BufferBody = true;
            },
            OnRequest = e => e.Request.SetText(e.Request.GetText().ToUpperInvariant()),
            OnResponse = e => e.Response!.Headers.Set("X-Seen", "by-hook"),
        }));

        var answer = await proxy.SendAsync("POST http://origin.test/echo HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");

        var atOrigin = await seen.Task.WaitAsync(InMemoryProxy.Bound);
        Assert.Contains("X-Added: yes\r\n", atOrigin, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nHELLO", atOrigin, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("X-Seen: by-hook\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("HELLO", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_spec_wrapper_fixes_hop_by_hop_and_framing_fields_a_hook_added()
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = new InMemoryProxy(EchoOrigin(seen), o => o.Addons.Add(new Hooks
        {
            OnRequest = e =>
            {
                e.Request.Headers.Add("Connection", "X-Secret");
                e.Request.Headers.Add("X-Secret", "hop");
                e.Request.Headers.Add("Keep-Alive", "timeout=5");
                e.Request.Headers.Add("Transfer-Encoding", "chunked");
                e.Request.Headers.Set("Content-Length", "999");
                e.Request.SetText("replaced body");
            },
        }));

        await proxy.SendAsync("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");

        var atOrigin = await seen.Task.WaitAsync(InMemoryProxy.Bound);
        Assert.DoesNotContain("X-Secret", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Keep-Alive", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Transfer-Encoding", atOrigin, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Content-Length: 13\r\n", atOrigin, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nreplaced body", atOrigin, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_synthetic_answer_never_reaches_the_origin()
    {
        await using var proxy = new InMemoryProxy(NoOrigin, o => o.Addons.Add(new Hooks
        {
            OnRequest = e => e.Respond(HttpResponse.Text(418, "short and stout")),
        }));

        var answer = await proxy.SendAsync("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 418 ", answer, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 15\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nshort and stout", answer, StringComparison.Ordinal);
        Assert.Empty(proxy.Dialed);
    }

    [Fact]
    public async Task A_killed_exchange_closes_without_an_answer_or_an_origin()
    {
        await using var proxy = new InMemoryProxy(NoOrigin, o => o.Addons.Add(new Hooks { OnRequest = e => e.Kill() }));

        var answer = await proxy.SendAsync("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n");

        Assert.Equal("", answer);
        Assert.Empty(proxy.Dialed);
    }

    [Fact]
    public async Task A_rerouted_request_goes_to_the_new_origin_with_its_Host()
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = new InMemoryProxy(EchoOrigin(seen), o => o.Addons.Add(new Hooks
        {
            OnRequest = e =>
            {
                e.Request.Host = "other.test";
                e.Request.Port = 8080;
                e.Request.Headers.Set("Host", "other.test:8080");
            },
        }));

        var answer = await proxy.SendAsync("GET http://origin.test/path HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Equal(["other.test:8080"], proxy.Dialed);
        Assert.Contains("Host: other.test:8080\r\n", await seen.Task.WaitAsync(InMemoryProxy.Bound), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_origin_connection_is_answered_502_with_the_phase()
    {
        await using var proxy = new InMemoryProxy(NoOrigin) { RefuseConnections = true };

        var answer = await proxy.SendAsync("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("origin.test:80", answer, StringComparison.Ordinal);
        Assert.Contains("(phase: connect)", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_origin_that_breaks_its_response_head_is_answered_502()
    {
        await using var proxy = new InMemoryProxy(async (_, stream) =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Len"u8.ToArray());
        });

        var answer = await proxy.SendAsync("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("(phase: response)", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_origin_that_does_not_answer_in_time_is_answered_504()
    {
        await using var proxy = new InMemoryProxy(
            async (_, stream) => await RawOrigin.WaitForCloseAsync(stream),
            o => o.Timeouts.ResponseHead = TimeSpan.FromMilliseconds(50));

        var answer = await proxy.SendAsync("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 504 Gateway Timeout\r\n", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_hook_is_answered_502_with_its_own_words_and_no_origin()
    {
        await using var proxy = new InMemoryProxy(NoOrigin, o => o.Addons.Add(new Hooks
        {
            OnRequest = _ => throw new InvalidOperationException("the hook broke"),
        }));

        var answer = await proxy.SendAsync("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\n", answer, StringComparison.Ordinal);
        Assert.Empty(proxy.Dialed);
    }

    [Fact]
    public async Task Observers_see_chunked_bodies_decoded_while_the_framing_passes_untouched_and_trailers_reach_the_model()
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var requestObserver = new RecordingObserver();
        var responseObserver = new RecordingObserver();
        var done = new TaskCompletionSource<HttpExchange>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = new InMemoryProxy(
            async (_, stream) =>
            {
                var head = await RawOrigin.ReadHeadAsync(stream);
                seen.TrySetResult(head + await ReadThroughBlankLineAsync(stream));
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n4\r\npong\r\n0\r\nX-Sum: 42\r\n\r\n"u8.ToArray());
            },
            o => o.Addons.Add(new Hooks
            {
                OnRequestHeaders = e => e.Request.Observe(requestObserver),
                OnResponseHeaders = e => e.Response!.Observe(responseObserver),
                OnDone = e => done.TrySetResult(e),
            }));

        var answer = await proxy.SendAsync("POST http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Check: 7\r\n\r\n");

        // The framing went through byte for byte, both ways.
        Assert.EndsWith("\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Check: 7\r\n\r\n", await seen.Task.WaitAsync(InMemoryProxy.Bound), StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n4\r\npong\r\n0\r\nX-Sum: 42\r\n\r\n", answer, StringComparison.Ordinal);

        // The observers saw the data decoded, and the end with the trailers.
        Assert.Equal("abcde", requestObserver.Text);
        Assert.Equal("7", requestObserver.Trailers?.Get("X-Check"));
        Assert.Equal("pong", responseObserver.Text);
        Assert.Equal("42", responseObserver.Trailers?.Get("X-Sum"));

        // The model has the streamed bodies' trailers, the stream id and each side's version.
        var exchange = await done.Task.WaitAsync(InMemoryProxy.Bound);
        Assert.Equal("7", exchange.Request.Trailers?.Get("X-Check"));
        Assert.Equal("42", exchange.Response!.Trailers?.Get("X-Sum"));
        Assert.Equal(1, exchange.StreamId);
        Assert.Equal(new Version(1, 1), exchange.ClientVersion);
        Assert.Equal(new Version(1, 1), exchange.ServerVersion);
    }

    [Fact]
    public async Task An_async_transform_rewrites_a_streamed_body_and_sees_its_end()
    {
        await using var proxy = new InMemoryProxy(
            async (_, stream) =>
            {
                await RawOrigin.ReadHeadAsync(stream);
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"u8.ToArray());
            },
            o => o.Addons.Add(new Hooks { OnResponseHeaders = e => e.Response!.Transform = new UpperWithSuffix() }));

        var answer = await proxy.SendAsync("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");

        Assert.Contains("Transfer-Encoding: chunked\r\n", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("Content-Length", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n5\r\nHELLO\r\n1\r\n!\r\n0\r\n\r\n", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exchanges_on_one_HTTP_1_1_connection_are_numbered_as_client_streams()
    {
        var ids = new System.Collections.Concurrent.ConcurrentQueue<int>();
        await using var proxy = new InMemoryProxy(NoOrigin, o => o.Addons.Add(new Hooks
        {
            OnRequest = e =>
            {
                ids.Enqueue(e.StreamId);
                e.Respond(HttpResponse.Text(200, "ok"));
            },
        }));

        await proxy.SendAsync("GET http://origin.test/1 HTTP/1.1\r\nHost: origin.test\r\n\r\nGET http://origin.test/2 HTTP/1.1\r\nHost: origin.test\r\n\r\nGET http://origin.test/3 HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");

        Assert.Equal([1, 3, 5], ids);
    }

    /// <summary>Reads up to and including the next empty line (the end of a chunked body's trailer section).</summary>
    private static async Task<string> ReadThroughBlankLineAsync(Stream stream)
    {
        var text = new StringBuilder();
        var one = new byte[1];
        while (!text.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one) == 0)
            {
                throw new EndOfStreamException(text.ToString());
            }

            text.Append((char)one[0]);
        }

        return text.ToString();
    }

    /// <summary>Answers one request with its body (Content-Length), and hands the whole request it read to <paramref name="seen"/>.</summary>
    private static Func<string, Stream, Task> EchoOrigin(TaskCompletionSource<string> seen) => async (_, stream) =>
    {
        var head = await RawOrigin.ReadHeadAsync(stream);
        var length = 0;
        foreach (var line in head.Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            {
                length = int.Parse(line["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        var body = new byte[length];
        await stream.ReadExactlyAsync(body);
        seen.TrySetResult(head + Encoding.Latin1.GetString(body));
        await stream.WriteAsync(Encoding.Latin1.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n"));
        await stream.WriteAsync(body);
    };

    private static Task NoOrigin(string origin, Stream stream) => throw new InvalidOperationException("no origin connection was expected: " + origin);

    private sealed class RecordingObserver : IBodyObserver
    {
        private readonly StringBuilder _text = new();

        public string Text => _text.ToString();

        public Interpose.Core.Http.HttpHeaders? Trailers { get; private set; }

        public ValueTask OnDataAsync(System.Buffers.ReadOnlySequence<byte> data, CancellationToken cancellationToken)
        {
            _text.Append(Encoding.Latin1.GetString(data));
            return default;
        }

        public ValueTask OnCompletedAsync(Interpose.Core.Http.HttpHeaders? trailers, CancellationToken cancellationToken)
        {
            Trailers = trailers;
            return default;
        }
    }

    /// <summary>Upper-cases each chunk, and adds "!" at the end of the body.</summary>
    private sealed class UpperWithSuffix : IBodyTransform
    {
        public async ValueTask<ReadOnlyMemory<byte>> TransformAsync(ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
        {
            await Task.Yield();
            return Encoding.Latin1.GetBytes(Encoding.Latin1.GetString(chunk.Span).ToUpperInvariant());
        }

        public ValueTask<ReadOnlyMemory<byte>> CompleteAsync(Interpose.Core.Http.HttpHeaders? trailers, CancellationToken cancellationToken) =>
            new("!"u8.ToArray());
    }
}
