using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Microsoft.Extensions.Logging;

namespace Interpose.Store.Tests;

/// <summary><see cref="MemoryFlowStore"/>: order, flows read back as they were kept, the filter on the kept fields and on
/// decoded flows, paging by position, delete, and eviction by count and by body bytes.</summary>
public sealed class MemoryFlowStoreTests
{
    [Fact]
    public async Task Flows_come_back_in_append_order_and_one_appended_again_is_replaced_in_place()
    {
        await using var store = new MemoryFlowStore();
        var flows = Enumerable.Range(0, 5).Select(i => Flow("/" + i)).ToList();
        await store.AppendAsync(flows);
        await store.AppendAsync([flows[1] with { Comment = "seen" }]);

        var all = await ToListAsync(store.QueryAsync());
        Assert.Equal(["/0", "/1", "/2", "/3", "/4"], all.Select(Path));
        Assert.Equal("seen", all[1].Comment);
        Assert.Equal(Json(flows[2]), Json((await store.GetAsync(flows[2].Id))!));
        Assert.Null(await store.GetAsync(Guid.NewGuid()));
        Assert.Equal(5, await store.CountAsync());
    }

    [Fact]
    public async Task A_flow_reads_back_whole_by_id_and_from_a_query_with_bodies_and_without_them_from_a_plain_query()
    {
        var body = "the response body"u8.ToArray();
        byte[] leaf = [0x30, 0x82, 0x01, 0x0a];
        var trailers = new HttpHeaders { { "Grpc-Status", "0" } };
        var flow = Flow("/full", body: "", requestBody: "the request body") with
        {
            StartedAt = new DateTimeOffset(2026, 12, 4, 11, 50, 1, 234, TimeSpan.FromHours(-5)).AddTicks(5678),
            ServerHttpVersion = "HTTP/2.0",
            StreamId = 7,
            ClientConnectionId = "12",
            ServerConnectionId = "34",
            IsSynthetic = true,
            Client = new FlowEndpoint("127.0.0.1", 50000),
            Server = new FlowEndpoint("::1", 443),
            Error = new FlowError("response", "reset", true),
            Tags = new Dictionary<string, string>(StringComparer.Ordinal) { ["rule"] = "x" },
            Marker = "⭐",
            Comment = "note",
            Replay = FilterReplayKind.Request,
            Timings = new FlowTimings(0.5, 1, 2, 3, 4, 5),
            ClientTls = new FlowTls("Tls13", "TLS_AES_128_GCM_SHA256", "h2", "example.test"),
            ServerTls = new FlowTls("Tls13", null, "http/1.1", "example.test") { CertificateChain = [leaf] },
            WebSocket = new FlowWebSocket
            {
                Messages = [new FlowWebSocketMessage(true, WebSocketOpcode.Text, 1, "hi"u8.ToArray(), 2), new FlowWebSocketMessage(false, WebSocketOpcode.Binary, 2.5, ReadOnlyMemory<byte>.Empty, 70_000, IsCompressed: true)],
                DroppedMessages = 3,
                CloseCode = 1000,
                CloseReason = "bye é",
                ClosedByClient = false,
                ParseError = "stopped",
            },
        };
        flow = flow with
        {
            Request = flow.Request with { Headers = new HttpHeaders { { "Host", "example.test" }, { "x-Quote", "say \"hi\" é \u00ff" }, { "x-quote", "dup" } }, Trailers = trailers },
            Response = flow.Response! with { Reason = "Switching", Body = FlowBody.FromBytes(body), Trailers = new HttpHeaders() },
        };
        var truncated = Flow("/truncated") with { Response = Flow("/").Response! with { Body = new FlowBody("AB"u8.ToArray(), 5_000_000_000, null) } };
        var tunnel = new TunnelFlow
        {
            Id = Guid.NewGuid(), StartedAt = DateTimeOffset.UnixEpoch, Kind = TunnelKind.TlsPassthrough, Host = "t", Port = 1, Sni = "t.test",
            BytesFromClient = 100, BytesFromServer = 2, DurationMs = 1.5, Marker = "m",
        };
        await using var store = new MemoryFlowStore();
        await store.AppendAsync([Flow("/before"), flow, tunnel, truncated]);

        var read = (HttpFlow)(await store.GetAsync(flow.Id))!;
        Assert.Equal(Json(flow), Json(read));
        Assert.Equal(Json(tunnel), Json((await store.GetAsync(tunnel.Id))!));
        Assert.Equal(Json(truncated), Json((await store.GetAsync(truncated.Id))!));
        Assert.Equal(Json(flow), Json((await ToListAsync(store.QueryAsync(new FlowQuery { IncludeBodies = true, Offset = 1, Limit = 1 })))[0]));
        Assert.Same(leaf, Assert.Single(read.ServerTls!.CertificateChain));
        Assert.Equal(body.Length + "the request body".Length + 2 + "body".Length + "AB".Length, store.BodyBytes);

        // Without bodies, as the SQLite store answers a plain query: lengths and hashes, no bytes.
        var plain = (HttpFlow)(await ToListAsync(store.QueryAsync()))[1];
        Assert.True(plain.Response!.Body.Content.IsEmpty);
        Assert.Equal(body.Length, plain.Response.Body.Length);
        Assert.Equal(flow.Response.Body.Sha256, plain.Response.Body.Sha256);
        Assert.Equal(Json(flow with { Request = flow.Request with { Body = flow.Request.Body.WithoutContent() }, Response = flow.Response with { Body = flow.Response.Body.WithoutContent() } }), Json(plain));
        Assert.IsType<TunnelFlow>((await ToListAsync(store.QueryAsync()))[2]);

        // A hash kept as text (upper case, as a HAR may carry it) reads back as it was; lower-case hex is kept as bytes.
        var upper = Flow("/upper") with { Response = Flow("/").Response! with { Body = new FlowBody("x"u8.ToArray(), 1, Convert.ToHexString(System.Security.Cryptography.SHA256.HashData("x"u8))) } };
        await using (var other = new MemoryFlowStore())
        {
            await other.AppendAsync([upper]);
            Assert.Equal(upper.Response!.Body.Sha256, ((HttpFlow)(await other.GetAsync(upper.Id))!).Response!.Body.Sha256);
        }

        // The records: the compact form (no body bytes, no certificates), bodies, URL and host.
        Assert.InRange(store.RecordBytes, 1, Json(flow).Length + Json(tunnel).Length + Json(truncated).Length + Json(Flow("/before")).Length);

        // Every property the JSON knows is in this sample (so the comparison above covers it): a property added to a flow
        // record fails here until the sample, and then the store's record, have it.
        var json = Json(flow) + Json(tunnel);
        foreach (var type in new[] { typeof(Flow), typeof(HttpFlow), typeof(TunnelFlow), typeof(FlowRequest), typeof(FlowResponse), typeof(FlowBody), typeof(FlowTimings), typeof(FlowTls), typeof(FlowEndpoint), typeof(FlowError), typeof(FlowWebSocket), typeof(FlowWebSocketMessage) })
        {
            foreach (var property in type.GetProperties(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public))
            {
                if (property.GetCustomAttributes(typeof(System.Text.Json.Serialization.JsonIgnoreAttribute), inherit: true).Length == 0 && property.Name != "EqualityContract")
                {
                    Assert.Contains("\"" + char.ToLowerInvariant(property.Name[0]) + property.Name[1..] + "\":", json, StringComparison.Ordinal);
                }
            }
        }
    }

    [Fact]
    public async Task Flows_fill_blocks_and_a_flow_larger_than_a_shared_record_reads_back_too()
    {
        await using var store = new MemoryFlowStore();
        var big = new string('b', MemoryFlowStore.BlockBytes / 8);
        var flows = Enumerable.Range(0, 40).Select(i => Flow("/" + i, body: i % 10 == 9 ? big : new string('x', 30_000) + i)).ToList();
        await store.AppendAsync(flows);
        Assert.True(store.RecordBytes > MemoryFlowStore.BlockBytes, "the flows span more than one block");
        var read = await ToListAsync(store.QueryAsync(new FlowQuery { IncludeBodies = true }));
        Assert.Equal(flows.Select(Json), read.Select(Json));
    }

    [Theory]
    [MemberData(nameof(FilterCases.Common), MemberType = typeof(FilterCases))]
    [InlineData("~d forms")]
    [InlineData("~d virtual")]
    [InlineData("~marked")]
    [InlineData("~marker ⭐ | ~comment seen")]
    [InlineData("~replay & ~replayq & !~replays")]
    [InlineData("~src 127.0.0.1")]
    [InlineData("~t json")]
    public async Task A_query_returns_exactly_what_the_filter_matches_on_the_flows(string expression)
    {
        // The kept fields (method, URL, host, status, error, marker, comment, replay) answer some filters without
        // decoding; the rest decode each flow. Either way: what the filter matches on the flows themselves.
        var flows = SqliteFlowStoreTests.Sample();
        flows[1] = flows[1] with { Marker = "⭐" };
        flows[2] = flows[2] with { Comment = "seen", Replay = FilterReplayKind.Request };

        // Sent to an address, named by its Host header (a client behind a tunnel to an IP): ~d matches the name too.
        var virtualHost = new Core.Http.HttpHeaders();
        virtualHost.Add("Host", "virtual.test");
        var byAddress = (HttpFlow)flows[3];
        flows[3] = byAddress with { Request = byAddress.Request with { Host = "203.0.113.5", Headers = virtualHost } };
        await using var store = new MemoryFlowStore();
        await store.AppendAsync(flows);
        var filter = FlowFilter.Parse(expression);

        var expected = flows.Where(f => filter.Matches(f.AsFilterable())).Select(f => f.Id).ToList();
        Assert.Equal(expected, (await ToListAsync(store.QueryAsync(new FlowQuery { Filter = filter }))).Select(f => f.Id));
        Assert.Equal(expected.Count, await store.CountAsync(filter));
        Assert.NotEmpty(expected.Count == flows.Count ? expected : flows.Select(f => f.Id).Except(expected));
    }

    [Fact]
    public async Task The_filter_is_evaluated_on_the_flows_and_offset_and_limit_count_the_matching_ones()
    {
        await using var store = new MemoryFlowStore();
        await store.AppendAsync([.. Enumerable.Range(0, 10).Select(i => Flow("/" + i, status: i % 2 == 0 ? 404 : 200, body: i == 7 ? "needle" : "hay"))]);
        var notFound = FlowFilter.Parse("~c 404");

        Assert.Equal(["/0", "/2", "/4", "/6", "/8"], (await ToListAsync(store.QueryAsync(new FlowQuery { Filter = notFound }))).Select(Path));
        Assert.Equal(["/4", "/6"], (await ToListAsync(store.QueryAsync(new FlowQuery { Filter = notFound, Offset = 2, Limit = 2 }))).Select(Path));
        Assert.Equal(["/3", "/4", "/5"], (await ToListAsync(store.QueryAsync(new FlowQuery { Offset = 3, Limit = 3 }))).Select(Path));
        Assert.Empty(await ToListAsync(store.QueryAsync(new FlowQuery { Offset = 10 })));
        Assert.Equal(["/7"], (await ToListAsync(store.QueryAsync(new FlowQuery { Filter = FlowFilter.Parse("~bs needle") }))).Select(Path));
        Assert.Equal(5, await store.CountAsync(notFound));
        Assert.Equal(["/1", "/3", "/5", "/7", "/9"], (await ToListAsync(((IFlowStore)store).ListAsync(FlowFilter.Parse("!~c 404")))).Select(l => new Uri(l.Url!).AbsolutePath));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await ToListAsync(store.QueryAsync(new FlowQuery { Offset = -1 })));
    }

    [Fact]
    public async Task Delete_by_id_by_filter_and_clear_remove_flows_and_their_bytes()
    {
        await using var store = new MemoryFlowStore();
        var flows = Enumerable.Range(0, 6).Select(i => Flow("/" + i, status: i < 2 ? 500 : 200, body: "12345")).ToList();
        await store.AppendAsync(flows);
        Assert.Equal(6 * 5, store.BodyBytes);

        Assert.Equal(1, await store.DeleteByIdAsync([flows[3].Id, Guid.NewGuid()]));
        Assert.Equal(2, await store.DeleteAsync(FlowFilter.Parse("~c 500")));
        Assert.Equal(["/2", "/4", "/5"], (await ToListAsync(store.QueryAsync())).Select(Path));
        Assert.Equal(3 * 5, store.BodyBytes);

        Assert.Equal(3, await store.DeleteAsync());
        Assert.Equal(0, store.Count);
        Assert.Equal(0, store.BodyBytes);
    }

    [Fact]
    public async Task Past_the_flow_cap_the_oldest_are_evicted_counted_announced_and_logged_once_per_burst()
    {
        var logger = new CollectingLogger();
        List<Flow> announced = [];
        List<long> evictedBy = [];
        List<SequencedFlow> stored = [];
        var observer = new DelegateObserver((flows, by) => { announced.AddRange(flows); evictedBy.AddRange(by); }, stored.AddRange);
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 3 }, logger, observer);
        var flows = Enumerable.Range(0, 7).Select(i => Flow("/" + i)).ToList();
        foreach (var flow in flows)
        {
            await store.WriteAsync(flow, CancellationToken.None);
        }

        // A recorder's writes announce their flows and evictions at its flush, oldest first: each flow with its
        // sequence, each eviction with the sequence of the append that made it (the fourth flow's evicted the first).
        Assert.Empty(announced);
        Assert.Empty(stored);
        await store.FlushAsync(CancellationToken.None);
        Assert.Equal(flows.Select((f, i) => new SequencedFlow(f, i + 1, false)), stored);
        Assert.Equal(["/0", "/1", "/2", "/3"], announced.Select(Path));
        Assert.Equal([4L, 5, 6, 7], evictedBy);
        Assert.Equal(["/4", "/5", "/6"], (await ToListAsync(store.QueryAsync())).Select(Path));
        Assert.Equal(4, store.EvictedFlows);
        Assert.Single(logger.Events, e => e == 403);

        // Still at the cap: the same burst, not logged again; after a delete made room, a new burst is.
        await store.AppendAsync([Flow("/7")]);
        Assert.Single(logger.Events, e => e == 403);
        Assert.Equal(["/0", "/1", "/2", "/3", "/4"], announced.Select(Path));
        await store.DeleteByIdAsync([flows[6].Id]);
        await store.AppendAsync([Flow("/8"), Flow("/9")]);
        Assert.Equal(2, logger.Events.Count(e => e == 403));
        Assert.Equal(["/7", "/8", "/9"], (await ToListAsync(store.QueryAsync())).Select(Path));
        Assert.Equal(6, store.EvictedFlows);
    }

    [Fact]
    public async Task Past_the_body_byte_cap_the_oldest_are_evicted_and_a_flow_larger_than_the_cap_is_kept_alone()
    {
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxBodyBytes = 10 });
        await store.AppendAsync([Flow("/a", body: "1234"), Flow("/b", body: "1234")]);
        Assert.Equal(8, store.BodyBytes);

        await store.AppendAsync([Flow("/c", body: "1234", requestBody: "1")]);
        Assert.Equal(["/b", "/c"], (await ToListAsync(store.QueryAsync())).Select(Path));
        Assert.Equal(9, store.BodyBytes);

        // A replaced flow's bytes are its new ones.
        var c = (HttpFlow)(await store.GetAsync((await ToListAsync(store.QueryAsync())).Last().Id))!;
        await store.AppendAsync([c with { Response = c.Response! with { Body = FlowBody.Empty } }]);
        Assert.Equal(5, store.BodyBytes);

        await store.AppendAsync([Flow("/huge", body: new string('x', 50))]);
        Assert.Equal(["/huge"], (await ToListAsync(store.QueryAsync())).Select(Path));
        Assert.Equal(50, store.BodyBytes);
        Assert.Equal(3, store.EvictedFlows);
    }

    [Fact]
    public async Task WebSocket_messages_count_toward_the_byte_cap()
    {
        var flow = Flow("/ws") with
        {
            WebSocket = new FlowWebSocket { Messages = [new FlowWebSocketMessage(true, WebSocketOpcode.Text, 1, "hello"u8.ToArray(), 5)] },
        };
        Assert.Equal(5 + "body"u8.Length, MemoryFlowStore.BodyBytesOf(flow));
        Assert.Equal(0, MemoryFlowStore.BodyBytesOf(new TunnelFlow { Id = Guid.NewGuid(), StartedAt = DateTimeOffset.UnixEpoch, Kind = TunnelKind.Raw, Host = "t", Port = 1, BytesFromClient = 100 }));
        await Task.CompletedTask;
    }

    [Fact]
    public async Task A_disposed_store_refuses_calls()
    {
        var store = new MemoryFlowStore();
        await store.AppendAsync([Flow("/")]);
        await store.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await store.GetAsync(Guid.NewGuid()));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await ToListAsync(store.QueryAsync()));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await store.AppendAsync([Flow("/")]));
    }

    private static string Path(Flow flow) => ((HttpFlow)flow).Request.Path;

    /// <summary>A flow's JSON line, to compare flows whole.</summary>
    internal static string Json(Flow flow)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        FlowJson.WriteLine(buffer, flow);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [Fact]
    public async Task At_the_flow_cap_emptied_blocks_are_reused_instead_of_new_ones_allocated()
    {
        // 16 KiB bodies: about 63 records a 1 MiB block, so 100 flows live in two or three blocks. Without reuse, 2,000
        // flows take about 32 blocks; with it, the live ones, the one being filled and at most MaxFreeBlocks kept.
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 100 });
        for (var i = 0; i < 2_000; i += 10)
        {
            await store.AppendAsync([.. Enumerable.Range(i, 10).Select(BigFlow)]);
        }

        Assert.Equal(100, store.Count);
        Assert.InRange(store.BlocksAllocated, 1, 4 + MemoryFlowStore.MaxFreeBlocks);
        Assert.Equal(BigBody(1_999), ((HttpFlow)(await store.GetAsync((await ToListAsync(store.QueryAsync())).Last().Id))!).Response!.Body.Content.ToArray());
    }

    [Fact]
    public async Task A_query_being_read_keeps_its_flows_intact_while_their_blocks_empty_and_reuse_resumes_after_it()
    {
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 100 });
        await store.AppendAsync([.. Enumerable.Range(0, 100).Select(BigFlow)]);

        var reading = store.QueryAsync(new FlowQuery { IncludeBodies = true }).GetAsyncEnumerator();
        List<Flow> read = [];
        try
        {
            Assert.True(await reading.MoveNextAsync());
            read.Add(reading.Current);

            // Every flow the query copied is evicted, and their blocks empty many times over, while it is read.
            for (var i = 100; i < 2_100; i += 10)
            {
                await store.AppendAsync([.. Enumerable.Range(i, 10).Select(BigFlow)]);
            }

            while (await reading.MoveNextAsync())
            {
                read.Add(reading.Current);
            }
        }
        finally
        {
            await reading.DisposeAsync();
        }

        Assert.Equal(Enumerable.Range(0, 100).Select(i => "/" + i), read.Select(Path));
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(BigBody(i), ((HttpFlow)read[i]).Response!.Body.Content.ToArray());
        }

        // With the reader gone, blocks are reused again: 2,000 more flows take few new ones.
        var before = store.BlocksAllocated;
        for (var i = 2_100; i < 4_100; i += 10)
        {
            await store.AppendAsync([.. Enumerable.Range(i, 10).Select(BigFlow)]);
        }

        Assert.InRange(store.BlocksAllocated - before, 0, 4 + MemoryFlowStore.MaxFreeBlocks);
    }

    [Fact]
    public async Task Blocks_are_reused_under_overlapping_queries_that_never_all_end()
    {
        // A query is always running (each begins before the one before it ends, as a busy page's requests may), so the
        // store never sees no reader; a block emptied under some queries is reused once those have ended.
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 100 });
        await store.AppendAsync([.. Enumerable.Range(0, 100).Select(BigFlow)]);
        var running = await OpenQueryAsync(store);
        try
        {
            for (var i = 100; i < 2_100; i += 10)
            {
                await store.AppendAsync([.. Enumerable.Range(i, 10).Select(BigFlow)]);
                var next = await OpenQueryAsync(store);
                await running.DisposeAsync();
                running = next;
            }

            Assert.InRange(store.BlocksAllocated, 1, 6 + MemoryFlowStore.MaxFreeBlocks);
            Assert.Equal("/2000", Path(running.Current));
        }
        finally
        {
            await running.DisposeAsync();
        }

        static async Task<IAsyncEnumerator<Flow>> OpenQueryAsync(MemoryFlowStore store)
        {
            var query = store.QueryAsync(new FlowQuery { IncludeBodies = true }).GetAsyncEnumerator();
            Assert.True(await query.MoveNextAsync());
            return query;
        }
    }

    [Fact]
    public async Task Evicted_flows_are_readable_during_the_callback_and_refused_after_it()
    {
        Flow? readInCall = null;
        IReadOnlyList<Flow>? keptUnread = null;
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 1 }, observer: new DelegateObserver((flows, _) =>
        {
            if (readInCall is null)
            {
                readInCall = flows[0];
            }
            else
            {
                keptUnread = flows;
            }
        }));

        await store.AppendAsync([Flow("/a"), Flow("/b")]);
        await store.AppendAsync([Flow("/c")]);

        // /a was read in its call; /b's list was kept unread, and its record's block may hold other records now.
        Assert.Equal("/a", Path(readInCall!));
        Assert.Throws<InvalidOperationException>(() => keptUnread![0]);
    }

    [Fact]
    public async Task The_eviction_list_answers_a_filter_on_its_kept_fields_and_one_on_bodies_alike()
    {
        IReadOnlyList<Flow>? evicted = null;
        bool[] onKeptFields = [], onBodies = [];
        var byUrl = FlowFilter.Parse("~u /keep");
        var byBody = FlowFilter.Parse("~bs secret");
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 1 }, observer: new DelegateObserver((flows, _) =>
        {
            evicted = flows;
            var list = Assert.IsAssignableFrom<IFilterableFlowList>(flows);
            onKeptFields = [.. Enumerable.Range(0, flows.Count).Select(i => list.Matches(i, byUrl))];
            onBodies = [.. Enumerable.Range(0, flows.Count).Select(i => list.Matches(i, byBody))];
        }));

        await store.AppendAsync([Flow("/keep", body: "no"), Flow("/other", body: "a secret"), Flow("/keep/too", body: "x"), Flow("/last")]);

        Assert.Equal([true, false, true], onKeptFields);
        Assert.Equal([false, true, false], onBodies);

        // The body filter decoded every flow during the call, so they read back after it.
        Assert.Equal(["/keep", "/other", "/keep/too"], evicted!.Select(Path));
    }

    [Fact]
    public async Task A_filter_on_the_kept_fields_leaves_evicted_flows_undecoded()
    {
        IReadOnlyList<Flow>? evicted = null;
        var matches = new List<bool>();
        var byUrl = FlowFilter.Parse("~u /a");
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 1 }, observer: new DelegateObserver((flows, _) =>
        {
            evicted = flows;
            var list = (IFilterableFlowList)flows;
            matches.Add(list.Matches(0, byUrl));
        }));

        await store.AppendAsync([Flow("/a"), Flow("/b")]);

        Assert.Equal([true], matches);
        // Not decoded to answer the filter: after the callback it can no longer be.
        Assert.Throws<InvalidOperationException>(() => evicted![0]);
    }

    [Fact]
    public async Task A_copy_of_the_eviction_list_made_in_the_callback_reads_back_after_it_without_decoding_in_it()
    {
        // A browser's filter counts evicted flows in its own push loop, after the callback: it takes a copy of the records
        // there (bytes, not decoded flows), which must read back once the store reused their blocks for other flows.
        IFilterableFlowList? copy = null;
        IFilterableFlowList? original = null;
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 1 }, observer: new DelegateObserver((flows, _) =>
        {
            original ??= (IFilterableFlowList)flows;
            copy ??= original.Detach();
        }));

        await store.AppendAsync([Flow("/keep", body: "no"), Flow("/other", body: "a secret"), Flow("/last")]);
        await store.AppendAsync([.. Enumerable.Range(0, 100).Select(i => Flow("/later/" + i, body: "reusing the blocks " + i))]);

        Assert.Throws<InvalidOperationException>(() => original![0]); // the callback's own list was not decoded in it
        Assert.Throws<ObjectDisposedException>(() => original!.Detach());
        Assert.Equal([true, false], Enumerable.Range(0, 2).Select(i => copy!.Matches(i, FlowFilter.Parse("~u /keep"))));
        Assert.Equal([false, true], Enumerable.Range(0, 2).Select(i => copy!.Matches(i, FlowFilter.Parse("~bs secret"))));
        Assert.Equal(["/keep", "/other"], copy!.Select(Path));
        Assert.Equal("a secret", System.Text.Encoding.UTF8.GetString(((HttpFlow)copy![1]).Response!.Body.Content.Span));
    }

    [Fact]
    public async Task The_tail_and_its_sequence_are_read_at_one_moment()
    {
        List<SequencedFlow> stored = [];
        List<long> evictedBy = [];
        await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = 4 }, observer: new DelegateObserver((_, by) => evictedBy.AddRange(by), stored.AddRange));
        var flows = Enumerable.Range(0, 6).Select(i => Flow("/" + i, status: i % 2 == 0 ? 200 : 404)).ToList();
        foreach (var flow in flows)
        {
            await store.WriteAsync(flow, CancellationToken.None);
        }

        // Written, not yet announced: readable at once, so in the tail; the tail's sequence says so.
        Assert.Empty(stored);
        var tail = await store.TailAsync(null, 3);
        Assert.Equal((1L, 4L, 6L), (tail.Offset, tail.Total, tail.Sequence!.Value));
        Assert.Equal(["/3", "/4", "/5"], tail.Flows.Select(Path));
        var filtered = await store.TailAsync(FlowFilter.Parse("~c 404"), 1);
        Assert.Equal((1L, 2L, 6L), (filtered.Offset, filtered.Total, filtered.Sequence!.Value));
        Assert.Equal(["/5"], filtered.Flows.Select(Path));
        Assert.Empty((await store.TailAsync(FlowFilter.Parse("~c 500"), 3)).Flows);

        // Announced after: every flow and eviction at or below the tail's sequence (which it already reflects).
        await store.FlushAsync(CancellationToken.None);
        Assert.All(stored, f => Assert.True(f.Sequence <= tail.Sequence));
        Assert.Equal([5L, 6], evictedBy);

        // A later append is numbered past it, as is the eviction it makes.
        await store.AppendAsync([Flow("/6")]);
        Assert.Equal(7, stored[^1].Sequence);
        Assert.Equal(7, evictedBy[^1]);
    }

    private static HttpFlow BigFlow(int i) => Flow("/" + i, body: System.Text.Encoding.ASCII.GetString(BigBody(i)));

    /// <summary>16 KiB that tell flow <paramref name="i"/> from its neighbours.</summary>
    private static byte[] BigBody(int i)
    {
        var body = new byte[16 * 1024];
        body.AsSpan().Fill((byte)('a' + (i % 26)));
        System.Text.Encoding.ASCII.GetBytes(i.ToString("D6", System.Globalization.CultureInfo.InvariantCulture)).CopyTo(body, 0);
        return body;
    }

    private static HttpFlow Flow(string path, int status = 200, string body = "body", string requestBody = "") => new()
    {
        Id = Guid.NewGuid(),
        StartedAt = DateTimeOffset.UnixEpoch,
        ClientHttpVersion = "HTTP/1.1",
        Request = new FlowRequest
        {
            Method = "GET", Scheme = "http", Host = "example.test", Port = 80, Path = path, HttpVersion = "HTTP/1.1",
            Headers = new HttpHeaders(), Body = FlowBody.FromBytes(System.Text.Encoding.UTF8.GetBytes(requestBody)),
        },
        Response = new FlowResponse
        {
            StatusCode = status, HttpVersion = "HTTP/1.1", Headers = new HttpHeaders(),
            Body = FlowBody.FromBytes(System.Text.Encoding.UTF8.GetBytes(body)),
        },
    };

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> items)
    {
        List<T> list = [];
        await foreach (var item in items)
        {
            list.Add(item);
        }

        return list;
    }

    /// <summary>The event ids logged, in order.</summary>
    internal sealed class CollectingLogger : ILogger
    {
        public List<int> Events { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Events)
            {
                Events.Add(eventId.Id);
            }
        }
    }
}
