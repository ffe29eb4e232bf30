using System.Buffers;
using System.Net.Http;
using System.Security.Cryptography;
using System.Text;
using Interpose.Core.Flows;
using Interpose.Proxy.Tests.Infrastructure;
using Interpose.Proxy.Tests.Pipeline;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>Recording flows: bodies captured without changing the stream, flows built and handed to a sink off the data path.</summary>
public sealed class FlowRecorderTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_chunked_request_and_a_body_over_the_cap_are_recorded_with_length_hash_and_trailers_while_the_wire_is_untouched()
    {
        var large = new byte[100];
        for (var i = 0; i < large.Length; i++)
        {
            large[i] = (byte)('a' + (i % 26));
        }

        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink, new FlowRecorderOptions { MaxBodyBytes = 16 });
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var proxy = new InMemoryProxy(
            async (_, stream) =>
            {
                var head = await RawOrigin.ReadHeadAsync(stream);
                seen.TrySetResult(head);
                await stream.WriteAsync(Encoding.Latin1.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"));
                await stream.WriteAsync(large);
            },
            o => o.Addons.Add(recorder));

        var answer = await proxy.SendAsync("POST http://origin.test/up?x=1 HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: chunked\r\nX-Case: Kept\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Check: 7\r\n\r\n");
        await recorder.CompleteAsync();

        Assert.EndsWith("\r\n\r\n" + Encoding.Latin1.GetString(large), answer, StringComparison.Ordinal);
        var flow = Assert.IsType<HttpFlow>(Assert.Single(sink.Flows));
        Assert.Equal("POST", flow.Request.Method);
        Assert.Equal("http://origin.test/up?x=1", flow.Request.Url);
        Assert.Equal("Kept", flow.Request.Headers.Get("x-case"));
        Assert.Contains(flow.Request.Headers, h => h.Name == "X-Case");
        Assert.Equal("abcde", Encoding.ASCII.GetString(flow.Request.Body.Content.Span));
        Assert.Equal(5, flow.Request.Body.Length);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData("abcde"u8)), flow.Request.Body.Sha256);
        Assert.Equal("7", flow.Request.Trailers?.Get("X-Check"));

        var response = flow.Response!;
        Assert.Equal(200, response.StatusCode);
        Assert.Equal(large.AsSpan(0, 16).ToArray(), response.Body.Content.ToArray());
        Assert.Equal(100, response.Body.Length);
        Assert.True(response.Body.IsTruncated);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(large)), response.Body.Sha256);
        Assert.Equal("HTTP/1.1", flow.ClientHttpVersion);
        Assert.Equal("HTTP/1.1", flow.ServerHttpVersion);
        Assert.NotNull(flow.Timings.FirstByte);
        Assert.NotNull(flow.Timings.Done);
        Assert.Equal(1, recorder.Recorded);
    }

    [Fact]
    public async Task A_request_without_a_body_is_recorded_with_the_empty_complete_body_and_one_with_a_body_with_it()
    {
        // A request without a body has it in hand from the start (no capture is attached for it); the next one on the
        // same connection streams its body past a capture as before.
        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink);
        await using var proxy = new InMemoryProxy(
            async (_, stream) =>
            {
                for (var i = 0; i < 2; i++)
                {
                    var head = await RawOrigin.ReadHeadAsync(stream);
                    if (head.Contains("Content-Length: 4", StringComparison.Ordinal))
                    {
                        await stream.ReadExactlyAsync(new byte[4]);
                    }

                    await stream.WriteAsync("HTTP/1.1 204 No Content\r\n\r\n"u8.ToArray());
                }
            },
            o => o.Addons.Add(recorder));

        await proxy.SendAsync("GET http://origin.test/a HTTP/1.1\r\nHost: origin.test\r\n\r\n"
            + "POST http://origin.test/b HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody");
        await recorder.CompleteAsync();

        Assert.Equal(2, sink.Flows.Count);
        var get = Assert.IsType<HttpFlow>(sink.Flows[0]).Request.Body;
        Assert.Equal(0, get.Length);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData([])), get.Sha256);
        var post = Assert.IsType<HttpFlow>(sink.Flows[1]).Request.Body;
        Assert.Equal("body", Encoding.ASCII.GetString(post.Content.Span));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData("body"u8)), post.Sha256);
    }

    [Fact]
    public async Task A_small_response_that_arrives_with_its_head_is_recorded_whole_and_relayed_unchanged()
    {
        // Head and body in one write: the proxy sends them to the client in one write too (its small-response path),
        // and the recorder must still see the body there.
        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink, new FlowRecorderOptions { MaxBodyBytes = 3 });
        await using var proxy = new InMemoryProxy(
            async (_, stream) =>
            {
                await RawOrigin.ReadHeadAsync(stream);
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Case: Kept\r\n\r\nhello"u8.ToArray());
            },
            o => o.Addons.Add(recorder));

        var answer = await proxy.SendAsync("GET http://origin.test/small HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");
        await recorder.CompleteAsync();

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Case: Kept\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nhello", answer, StringComparison.Ordinal);
        var body = Assert.IsType<HttpFlow>(Assert.Single(sink.Flows)).Response!.Body;
        Assert.Equal("hel", Encoding.ASCII.GetString(body.Content.Span));
        Assert.Equal(5, body.Length);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData("hello"u8)), body.Sha256);
    }

    [Fact]
    public async Task A_response_made_by_an_addon_without_a_body_is_recorded_with_the_empty_complete_body()
    {
        // A block list's status has no body and streams past no capture; it went out empty, so it is recorded whole
        // (with the hash of nothing), not as a body of unknown length that a replay would refuse.
        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink);
        await using var proxy = new InMemoryProxy(
            static (_, _) => Task.CompletedTask,
            o =>
            {
                o.Addons.Add(recorder);
                o.Addons.Add(new Hooks { OnRequest = e => e.Respond(new HttpResponse(403)) });
            });

        var answer = await proxy.SendAsync("GET http://origin.test/blocked HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");
        await recorder.CompleteAsync();

        Assert.StartsWith("HTTP/1.1 403 ", answer, StringComparison.Ordinal);
        var body = Assert.IsType<HttpFlow>(Assert.Single(sink.Flows)).Response!.Body;
        Assert.Equal(FlowBody.Empty, body);
        Assert.True(body.IsWhole);
    }

    [Fact]
    public async Task Two_recorders_on_one_proxy_each_record_every_exchange_with_its_bodies()
    {
        // The first recorder keeps its captures on the exchange, the second in a map of its own: both see both bodies.
        var first = new MemoryFlowSink();
        var second = new MemoryFlowSink();
        await using var one = new FlowRecorder(first);
        await using var two = new FlowRecorder(second);
        await using var proxy = new InMemoryProxy(
            async (_, stream) =>
            {
                await RawOrigin.ReadHeadAsync(stream);
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"u8.ToArray());
            },
            o =>
            {
                o.Addons.Add(one);
                o.Addons.Add(two);
            });

        await proxy.SendAsync("POST http://origin.test/both HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
        await one.CompleteAsync();
        await two.CompleteAsync();

        foreach (var sink in new[] { first, second })
        {
            var flow = Assert.IsType<HttpFlow>(Assert.Single(sink.Flows));
            Assert.Equal("abc", Encoding.ASCII.GetString(flow.Request.Body.Content.Span));
            Assert.Equal("hello", Encoding.ASCII.GetString(flow.Response!.Body.Content.Span));
            Assert.Equal(5, flow.Response.Body.Length);
        }
    }

    [Fact]
    public async Task A_capture_keeps_the_prefix_across_segments_hashes_everything_and_has_no_hash_for_a_body_that_did_not_end()
    {
        var first = new byte[10];
        var second = new byte[10];
        Array.Fill(first, (byte)1);
        Array.Fill(second, (byte)2);
        var data = Segments(first, second);

        using (var capped = new BodyCapture(maxBytes: 15))
        {
            await capped.OnDataAsync(data, CancellationToken.None);
            await capped.OnCompletedAsync(null, CancellationToken.None);
            var body = capped.ToBody();
            Assert.Equal([.. first, .. second.AsSpan(0, 5).ToArray()], body.Content.ToArray());
            Assert.Equal(20, body.Length);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData([.. first, .. second])), body.Sha256);
        }

        // The cap reached exactly at a segment's end, a cap of nothing, and a body kept whole: the hash is the whole body's.
        foreach (var cap in new int?[] { 10, 0, 20, 64 })
        {
            using var capture = new BodyCapture(cap);
            await capture.OnDataAsync(data, CancellationToken.None);
            await capture.OnDataAsync(new ReadOnlySequence<byte>(first), CancellationToken.None);
            await capture.OnCompletedAsync(null, CancellationToken.None);
            var body = capture.ToBody();
            byte[] whole = [.. first, .. second, .. first];
            Assert.Equal(whole.AsSpan(0, Math.Min(cap!.Value, whole.Length)).ToArray(), body.Content.ToArray());
            Assert.Equal(30, body.Length);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(whole)), body.Sha256);
        }

        using (var all = new BodyCapture(maxBytes: null))
        {
            await all.OnDataAsync(data, CancellationToken.None);
            var body = all.ToBody();
            Assert.Equal(20, body.Content.Length);
            Assert.False(body.IsTruncated);
            Assert.Null(body.Sha256);
        }
    }

    [Fact]
    public async Task Exchanges_through_a_real_proxy_are_recorded_with_TLS_of_both_sides()
    {
        await using var origin = await Origins.StartTlsAsync();
        var sink = new MemoryFlowSink();
        await using var recorder = new FlowRecorder(sink);
        await using (var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(recorder)))
        {
            using var client = proxy.CreateClient();
            Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));
            using var post = await client.PostAsync(origin.Url("/echo"), new ByteArrayContent("ping"u8.ToArray()));
            Assert.Equal("ping", await post.Content.ReadAsStringAsync());
        }

        await recorder.CompleteAsync();

        var flows = sink.Flows.Cast<HttpFlow>().ToList();
        Assert.Equal(2, flows.Count);

        // Both went over one pooled origin connection: its certificate is one array, not a copy per flow.
        Assert.Equal(flows[0].ServerConnectionId, flows[1].ServerConnectionId);
        Assert.Same(flows[0].ServerTls!.CertificateChain[0], flows[1].ServerTls!.CertificateChain[0]);
        Assert.Equal("GET", flows[0].Request.Method);
        Assert.Equal("hello from origin", Encoding.UTF8.GetString(flows[0].Response!.Body.Content.Span));
        Assert.Equal("ping", Encoding.UTF8.GetString(flows[1].Request.Body.Content.Span));
        Assert.Equal("ping", Encoding.UTF8.GetString(flows[1].Response!.Body.Content.Span));
        foreach (var flow in flows)
        {
            Assert.Equal("https", flow.Request.Scheme);
            Assert.Equal("127.0.0.1", flow.Client!.Host);
            Assert.NotNull(flow.ClientTls?.Version);
            Assert.NotNull(flow.ServerTls?.CipherSuite);
            Assert.NotEmpty(flow.ServerTls!.CertificateChain);
            Assert.True(flow.StartedAt > DateTimeOffset.UnixEpoch);
        }
    }

    [Fact]
    public async Task A_blocked_sink_costs_bodies_then_flows_counted_and_never_holds_the_proxy()
    {
        const int Exchanges = 12;
        var sink = new BlockingSink();
        var recorder = new FlowRecorder(sink, new FlowRecorderOptions { QueueCapacity = 2 });
        await using (var proxy = new InMemoryProxy(NoOrigin, o => { o.Addons.Add(new Answer()); o.Addons.Add(recorder); }))
        {
            for (var i = 0; i < Exchanges; i++)
            {
                var answer = await proxy.SendAsync($"GET http://origin.test/{i} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");
                Assert.EndsWith("\r\n\r\nhello", answer, StringComparison.Ordinal);
                if (i == 0)
                {
                    // From here on the sink holds the first flow until the end: every later exchange completes past it.
                    await sink.Entered.Task.WaitAsync(InMemoryProxy.Bound);
                }
            }
        }

        Assert.True(recorder.DroppedFlows > 0, "flows dropped: " + recorder.DroppedFlows);
        Assert.True(recorder.DroppedBodies > 0, "bodies dropped: " + recorder.DroppedBodies);

        sink.Released.SetResult();
        await recorder.DisposeAsync();
        Assert.Equal(Exchanges, sink.Flows.Count + recorder.DroppedFlows);
        Assert.Contains(sink.Flows, f => f.Response!.Body is { Content.IsEmpty: true, Length: 5 });
    }

    [Fact]
    public async Task With_the_default_queue_a_sink_stalled_through_a_burst_of_2000_exchanges_loses_no_body()
    {
        // What the SQLite store's WAL restart stalls its writer for, at 20,000 exchanges a second: the default queue's
        // half (where bodies start to be dropped) must hold it.
        const int Exchanges = 2000;
        var sink = new BlockingSink();
        var recorder = new FlowRecorder(sink);
        await using (var proxy = new InMemoryProxy(NoOrigin, o => { o.Addons.Add(new Answer()); o.Addons.Add(recorder); }))
        {
            for (var i = 0; i < Exchanges; i++)
            {
                Assert.EndsWith("hello", await proxy.SendAsync($"GET http://origin.test/{i} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
                if (i == 0)
                {
                    // The sink is stalled on the first flow through the whole burst.
                    await sink.Entered.Task.WaitAsync(InMemoryProxy.Bound);
                }
            }
        }

        sink.Released.SetResult();
        await recorder.DisposeAsync();
        Assert.Equal(0, recorder.DroppedBodies);
        Assert.Equal(0, recorder.DroppedFlows);
        Assert.Equal(Exchanges, sink.Flows.Count);
        Assert.All(sink.Flows, f => Assert.Equal("hello", Encoding.UTF8.GetString(f.Response!.Body.Content.Span)));
    }

    [Fact]
    public async Task A_failing_sink_stops_recording_and_the_proxy_goes_on()
    {
        var recorder = new FlowRecorder(new FailingSink());
        await using (var proxy = new InMemoryProxy(NoOrigin, o => { o.Addons.Add(new Answer()); o.Addons.Add(recorder); }))
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.EndsWith("hello", await proxy.SendAsync("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
            }
        }

        await recorder.DisposeAsync();
        Assert.IsType<IOException>(recorder.SinkFailure);
        Assert.Equal(0, recorder.Recorded);
        Assert.Equal(3, recorder.DroppedFlows);
    }

    [Fact]
    public async Task The_JSON_Lines_sink_writes_one_flow_per_line_that_reads_back()
    {
        var sink = new MemoryFlowSink();
        await using (var recorder = new FlowRecorder(sink))
        {
            await using var proxy = new InMemoryProxy(NoOrigin, o => { o.Addons.Add(new Answer()); o.Addons.Add(recorder); });
            await proxy.SendAsync("GET http://origin.test/a HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");
            await proxy.SendAsync("GET http://origin.test/b HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");
        }

        using var file = new MemoryStream();
        await using (var jsonl = new JsonLinesFlowSink(file))
        {
            foreach (var flow in sink.Flows)
            {
                await jsonl.WriteAsync(flow, CancellationToken.None);
            }

            await jsonl.FlushAsync(CancellationToken.None);
        }

        var lines = Encoding.UTF8.GetString(file.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        var back = lines.Select(l => Assert.IsType<HttpFlow>(FlowJson.Read(Encoding.UTF8.GetBytes(l)))).ToList();
        Assert.Equal(["/a", "/b"], back.Select(f => f.Request.Path));
        Assert.Equal(sink.Flows[0].Id, back[0].Id);
        Assert.Equal("hello", Encoding.UTF8.GetString(back[0].Response!.Body.Content.Span));
        Assert.Equal(((HttpFlow)sink.Flows[0]).Response!.Body.Sha256, back[0].Response!.Body.Sha256);
        Assert.Equal(((HttpFlow)sink.Flows[0]).Request.Headers, back[0].Request.Headers);
    }

    [Fact]
    public async Task Flows_the_JSON_Lines_sink_lost_in_a_failed_flush_are_dropped_not_recorded()
    {
        // The sink kept no count, so the recorder counted a flow as recorded when its line reached the stream's buffer: a
        // flush that then failed (a full disk) lost the lines while Recorded kept them.
        await using var file = new FlushFailingStream();
        var recorder = new FlowRecorder(new JsonLinesFlowSink(file), new FlowRecorderOptions { FlushInterval = TimeSpan.FromDays(1) });
        await using (var proxy = new InMemoryProxy(NoOrigin, o => { o.Addons.Add(new Answer()); o.Addons.Add(recorder); }))
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.EndsWith("hello", await proxy.SendAsync($"GET http://origin.test/{i} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
            }
        }

        // The three lines wait in the buffer for the final flush, which fails.
        await recorder.DisposeAsync();
        Assert.IsType<IOException>(recorder.SinkFailure);
        Assert.Equal((0L, 3L), (recorder.Recorded, recorder.DroppedFlows));
    }

    [Fact]
    public async Task The_JSON_Lines_sink_counts_a_flow_kept_once_a_flush_after_it_succeeded()
    {
        using var file = new MemoryStream();
        await using var jsonl = new JsonLinesFlowSink(file);
        var flow = new TunnelFlow { Id = Guid.NewGuid(), StartedAt = DateTimeOffset.UnixEpoch, Kind = TunnelKind.TlsPassthrough, Host = "origin.test", Port = 443 };

        IFlowSink sink = jsonl;
        await sink.WriteAsync(flow, CancellationToken.None);
        Assert.Equal(0, sink.KeptFlows);
        await sink.FlushAsync(CancellationToken.None);
        Assert.Equal(1, sink.KeptFlows);
    }

    private static ReadOnlySequence<byte> Segments(byte[] first, byte[] second)
    {
        var a = new Segment(first, 0);
        var b = a.Append(second);
        return new ReadOnlySequence<byte>(a, 0, b, second.Length);
    }

    private static Task NoOrigin(string origin, Stream stream) => throw new InvalidOperationException("no origin connection was expected: " + origin);

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] data, long index)
        {
            Memory = data;
            RunningIndex = index;
        }

        public Segment Append(byte[] data)
        {
            var next = new Segment(data, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    /// <summary>Answers every request with "hello", without an origin.</summary>
    private sealed class Answer : ProxyAddon
    {
        public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            exchange.Respond(HttpResponse.Text(200, "hello"));
            return default;
        }
    }

    [Fact]
    public async Task Written_flows_are_flushed_once_the_flush_interval_has_passed_not_each_time_the_queue_runs_empty()
    {
        const int Exchanges = 3;
        var clock = new ManualClock();
        var sink = new CountingSink(Exchanges);
        var recorder = new FlowRecorder(sink, new FlowRecorderOptions { TimeProvider = clock, FlushInterval = TimeSpan.FromSeconds(1) });
        await using (var proxy = new InMemoryProxy(NoOrigin, o => { o.Addons.Add(new Answer()); o.Addons.Add(recorder); }))
        {
            for (var i = 0; i < Exchanges; i++)
            {
                Assert.EndsWith("hello", await proxy.SendAsync($"GET http://origin.test/{i} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
            }
        }

        // Each flow reached the sink as it came, with the queue empty in between: no flush yet, the interval has not passed.
        await sink.AllWritten.Task.WaitAsync(InMemoryProxy.Bound);
        Assert.Equal(0, sink.Flushes);

        clock.Advance(TimeSpan.FromSeconds(1));
        await sink.Flushed.Task.WaitAsync(InMemoryProxy.Bound);
        Assert.Equal(1, sink.Flushes);

        // Completing flushes only what is left unflushed: nothing here.
        await recorder.DisposeAsync();
        Assert.Equal(1, sink.Flushes);
    }

    [Fact]
    public async Task Flows_of_a_batch_the_sink_failed_to_commit_are_dropped_not_recorded()
    {
        // The recorder counted a flow as recorded when the sink's WriteAsync returned: the SQLite store then still held it
        // in its open batch, and a commit that failed rolled the batch back while the count (and the metric) kept it.
        var sink = new BatchingSink(batchSize: 2);
        var recorder = new FlowRecorder(sink, new FlowRecorderOptions { FlushInterval = TimeSpan.FromDays(1) });
        await using (var proxy = new InMemoryProxy(NoOrigin, o => { o.Addons.Add(new Answer()); o.Addons.Add(recorder); }))
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.EndsWith("hello", await proxy.SendAsync($"GET http://origin.test/{i} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
            }
        }

        // The first two were committed as a batch; the third waits in the next, whose commit (the final flush) fails.
        await recorder.DisposeAsync();
        Assert.IsType<IOException>(recorder.SinkFailure);
        Assert.Equal((2L, 1L), (recorder.Recorded, recorder.DroppedFlows));
    }

    /// <summary>A sink that commits every <paramref name="batchSize"/> flows and fails to commit the rest.</summary>
    private sealed class BatchingSink(int batchSize) : IFlowSink
    {
        private int _pending;
        private long _kept;

        public long? KeptFlows => Interlocked.Read(ref _kept);

        public ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken)
        {
            if (++_pending == batchSize)
            {
                Interlocked.Add(ref _kept, _pending);
                _pending = 0;
            }

            return default;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) =>
            _pending == 0 ? default : throw new IOException("database or disk is full");
    }

    private sealed class CountingSink(int expected) : IFlowSink
    {
        private int _writes;
        private int _flushes;

        public TaskCompletionSource AllWritten { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Flushed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Flushes => Volatile.Read(ref _flushes);

        public ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _writes) == expected)
            {
                AllWritten.TrySetResult();
            }

            return default;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _flushes);
            Flushed.TrySetResult();
            return default;
        }
    }

    private sealed class BlockingSink : IFlowSink
    {
        private readonly List<HttpFlow> _flows = [];

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<HttpFlow> Flows => _flows;

        public async ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken)
        {
            Entered.TrySetResult();
            await Released.Task.WaitAsync(cancellationToken);
            _flows.Add((HttpFlow)flow);
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => default;
    }

    /// <summary>A file on a full disk: writes land in the buffer, flushing them fails.</summary>
    private sealed class FlushFailingStream : MemoryStream
    {
        public override void Flush() => throw new IOException("No space left on device");

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.FromException(new IOException("No space left on device"));
    }

    private sealed class FailingSink : IFlowSink
    {
        public ValueTask WriteAsync(Flow flow, CancellationToken cancellationToken) => throw new IOException("No space left on device");

        public ValueTask FlushAsync(CancellationToken cancellationToken) => default;
    }
}
