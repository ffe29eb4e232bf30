using System.IO.Compression;
using System.Text;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Microsoft.Data.Sqlite;

namespace Interpose.Store.Tests;

/// <summary>The SQLite flow store: round trips, filters (push-down and residual agree with the in-memory filter),
/// batching, schema versions and migration, files that are not ours, the recorder lock, a full file.</summary>
public sealed class SqliteFlowStoreTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private readonly string _dir = Directory.CreateTempSubdirectory("interpose-store-").FullName;

    private string File1 => Path.Combine(_dir, "flows.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task A_flow_reads_back_with_its_bodies_by_id_and_without_them_from_a_query()
    {
        var flows = Sample();
        await using (var store = SqliteFlowStore.Open(File1))
        {
            await store.AppendAsync(flows);
        }

        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        var post = (HttpFlow)(await reader.GetAsync(flows[1].Id))!;
        var written = (HttpFlow)flows[1];
        Assert.Equal("hello=world&x=1", Encoding.ASCII.GetString(post.Request.Body.Content.Span));
        Assert.Equal(written.Request.Body.Sha256, post.Request.Body.Sha256);
        Assert.Equal(written.Request.Headers, post.Request.Headers);
        Assert.Equal(written.Response!.Body.Content.ToArray(), post.Response!.Body.Content.ToArray());
        Assert.Null(await reader.GetAsync(Guid.NewGuid()));

        var listed = await ToListAsync(reader.QueryAsync());
        Assert.Equal(flows.Select(f => f.Id), listed.Select(f => f.Id));
        var listedPost = (HttpFlow)listed[1];
        Assert.True(listedPost.Request.Body.Content.IsEmpty);
        Assert.Equal(15, listedPost.Request.Body.Length);
        Assert.IsType<TunnelFlow>(listed[^1]);
        Assert.Equal(flows.Count, await reader.CountAsync());
    }

    [Theory]
    [MemberData(nameof(FilterCases.Common), MemberType = typeof(FilterCases))]
    public async Task A_query_returns_exactly_what_the_filter_matches_in_memory(string expression)
    {
        var flows = Sample();
        await using var store = SqliteFlowStore.Open(File1);
        await store.AppendAsync(flows);
        var filter = FlowFilter.Parse(expression);

        var expected = flows.Where(f => filter.Matches(f.AsFilterable())).Select(f => f.Id).ToList();
        var got = (await ToListAsync(store.QueryAsync(new FlowQuery { Filter = filter }))).Select(f => f.Id).ToList();

        Assert.Equal(expected, got);
        Assert.Equal(expected.Count, await store.CountAsync(filter));
        Assert.Equal(
            flows.Where(f => filter.Matches(f.AsFilterable())).Select(FlowListing.From),
            await ToListAsync(store.ListAsync(filter)));
        Assert.NotEmpty(expected.Count == flows.Count ? expected : flows.Select(f => f.Id).Except(expected));
    }

    [Fact]
    public async Task A_WebSocket_flow_reads_back_with_its_messages_and_the_filter_reads_them()
    {
        var flow = Http("GET", "https", "example.com", "/ws", Response(101, [], "Upgrade: websocket")) with
        {
            WebSocket = new FlowWebSocket
            {
                Messages =
                [
                    new FlowWebSocketMessage(FromClient: true, WebSocketOpcode.Text, 1.5, "subscribe prices"u8.ToArray(), 16),
                    new FlowWebSocketMessage(FromClient: false, WebSocketOpcode.Binary, 2.25, new byte[] { 0, 1, 2 }, 300),
                ],
                DroppedMessages = 4,
                CloseCode = 1001,
                CloseReason = "going away",
                ClosedByClient = false,
            },
        };
        await using (var store = SqliteFlowStore.Open(File1))
        {
            await store.AppendAsync([flow]);
        }

        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        var back = Assert.IsType<FlowWebSocket>(((HttpFlow)(await reader.GetAsync(flow.Id))!).WebSocket);
        Assert.Equal(flow.WebSocket.Messages.Select(m => (m.FromClient, m.Opcode, m.OffsetMs, Convert.ToHexString(m.Content.Span), m.Length)),
            back.Messages.Select(m => (m.FromClient, m.Opcode, m.OffsetMs, Convert.ToHexString(m.Content.Span), m.Length)));
        Assert.True(back.Messages[1].IsTruncated);
        Assert.Equal((4L, 1001, "going away", (bool?)false), (back.DroppedMessages, back.CloseCode, back.CloseReason, back.ClosedByClient));
        Assert.Single(await ToListAsync(reader.QueryAsync(new FlowQuery { Filter = FlowFilter.Parse("~websocket & ~bq prices") })));
    }

    [Fact]
    public async Task Limit_and_delete_by_filter_and_clear()
    {
        await using var store = SqliteFlowStore.Open(File1);
        await store.AppendAsync(Sample());

        var two = await ToListAsync(store.QueryAsync(new FlowQuery { Limit = 2 }));
        Assert.Equal(2, two.Count);
        Assert.Equal(1, await store.DeleteAsync(FlowFilter.Parse("~c 404")));
        Assert.Equal(1, await store.DeleteAsync(FlowFilter.Parse("~u \"/b[aeiou]+m$\"")));
        Assert.Equal(0, await store.CountAsync(FlowFilter.Parse("~c 404")));
        Assert.Equal(Sample().Count - 2, await store.CountAsync());
        Assert.Equal(Sample().Count - 2, await store.DeleteAsync());
        Assert.Equal(0, await store.CountAsync());
    }

    [Fact]
    public async Task As_a_sink_flows_are_committed_per_batch_or_on_flush_and_a_reader_sees_only_committed_batches()
    {
        var flows = Sample();
        await using var store = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { BatchSize = 2 });
        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });

        IFlowSink sink = store;
        await store.WriteAsync(flows[0], CancellationToken.None);
        Assert.Equal(0, await reader.CountAsync());
        Assert.Equal(0, sink.KeptFlows);
        await store.WriteAsync(flows[1], CancellationToken.None);
        Assert.Equal(2, await reader.CountAsync());
        Assert.Equal(2, sink.KeptFlows);
        await store.WriteAsync(flows[2], CancellationToken.None);
        Assert.Equal(2, await reader.CountAsync());
        Assert.Equal(2, sink.KeptFlows); // the recorder counts only what was committed
        await store.FlushAsync(CancellationToken.None);
        Assert.Equal(3, await reader.CountAsync());
        Assert.Equal(3, sink.KeptFlows);
        Assert.Equal(3, store.Written);
    }

    [Fact]
    public async Task A_batch_lost_when_another_write_committed_it_fails_the_sinks_next_call_once()
    {
        // The open batch holds flows the recorder's WriteAsync calls took, all returned: when a delete or AppendAsync
        // committed it first and that commit failed, the flows were lost and the recorder never heard of it, so it
        // counted them neither as recorded nor as dropped.
        var flows = Sample();
        var logger = new MemoryFlowStoreTests.CollectingLogger();
        await using var store = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { BatchSize = 100 }, logger);
        IFlowSink sink = store;
        await sink.WriteAsync(flows[0], CancellationToken.None);
        await sink.WriteAsync(flows[1], CancellationToken.None);

        store.BeforeBatchCommit = () => throw new SqliteException("database or disk is full", 13);
        await Assert.ThrowsAsync<IOException>(async () => await store.DeleteByIdAsync([flows[2].Id]));
        store.BeforeBatchCommit = null;

        var lost = await Assert.ThrowsAsync<IOException>(async () => await sink.FlushAsync(CancellationToken.None));
        Assert.Contains("batch of 2 recorded flows was lost", lost.Message, StringComparison.Ordinal);
        Assert.Equal(0, sink.KeptFlows);
        Assert.Contains(405, logger.Events);

        // Told once: the store takes flows again.
        await sink.WriteAsync(flows[2], CancellationToken.None);
        await sink.FlushAsync(CancellationToken.None);
        Assert.Equal(1, sink.KeptFlows);
    }

    [Fact]
    public async Task Appending_a_flow_with_an_id_already_stored_replaces_it()
    {
        var flow = (HttpFlow)Sample()[0];
        await using var store = SqliteFlowStore.Open(File1);
        await store.AppendAsync([flow]);
        var newBody = FlowBody.FromBytes("replaced"u8.ToArray());
        await store.AppendAsync([flow with { Comment = "second", Response = flow.Response! with { StatusCode = 503, Body = newBody } }]);

        var back = Assert.Single(await ToListAsync(store.QueryAsync(new FlowQuery { IncludeBodies = true })));
        Assert.Equal("second", back.Comment);
        Assert.Equal("replaced"u8.ToArray(), ((HttpFlow)back).Response!.Body.Content.ToArray());
        Assert.Equal(flow.Request.Body.Content.IsEmpty ? 1L : 2L, Scalar(File1, "SELECT count(*) FROM bodies"));
        Assert.Equal(1, await store.CountAsync(FlowFilter.Parse("~c 503")));
        Assert.Equal(0, await store.CountAsync(FlowFilter.Parse("~c 200")));
    }

    [Fact]
    public async Task A_second_recorder_on_the_same_file_is_refused_while_readers_are_not()
    {
        await using var first = SqliteFlowStore.Open(File1);
        await first.AppendAsync(Sample());

        var refused = Assert.Throws<FlowStoreException>(() => SqliteFlowStore.Open(File1));
        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });

        Assert.Equal(FlowStoreProblem.Locked, refused.Problem);
        Assert.Equal(Sample().Count, await reader.CountAsync());
        await first.DisposeAsync();
        await using var second = SqliteFlowStore.Open(File1);
        Assert.Equal(Sample().Count, await second.CountAsync());
    }

    [Fact]
    public async Task A_text_file_is_not_a_flow_store_for_reading_or_writing_and_stays_as_it_was()
    {
        var bytes = Encoding.UTF8.GetBytes(new string('x', 5000));
        await File.WriteAllBytesAsync(File1, bytes);

        var reading = Assert.Throws<FlowStoreException>(() => SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true }));
        var writing = Assert.Throws<FlowStoreException>(() => SqliteFlowStore.Open(File1));

        Assert.Equal(FlowStoreProblem.NotAFlowStore, reading.Problem);
        Assert.Equal(FlowStoreProblem.NotAFlowStore, writing.Problem);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(File1));
        Assert.DoesNotContain('\n', reading.Message);
    }

    [Fact]
    public async Task Another_applications_SQLite_database_is_refused_and_not_changed()
    {
        using (var other = new SqliteConnection($"Data Source={File1};Pooling=False"))
        {
            other.Open();
            using var create = other.CreateCommand();
            create.CommandText = "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');";
            create.ExecuteNonQuery();
        }

        var before = await File.ReadAllBytesAsync(File1);
        var writing = Assert.Throws<FlowStoreException>(() => SqliteFlowStore.Open(File1));
        var reading = Assert.Throws<FlowStoreException>(() => SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true }));

        Assert.Equal(FlowStoreProblem.NotAFlowStore, writing.Problem);
        Assert.Equal(FlowStoreProblem.NotAFlowStore, reading.Problem);
        Assert.Equal(before, await File.ReadAllBytesAsync(File1));
    }

    [Fact]
    public async Task A_file_from_a_newer_schema_is_refused_and_not_changed()
    {
        await using (var store = SqliteFlowStore.Open(File1))
        {
            await store.AppendAsync(Sample());
        }

        SetUserVersion(File1, SqliteFlowStore.CurrentSchemaVersion + 1);
        var before = await File.ReadAllBytesAsync(File1);

        var writing = Assert.Throws<FlowStoreException>(() => SqliteFlowStore.Open(File1));
        var reading = Assert.Throws<FlowStoreException>(() => SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true }));

        Assert.Equal(FlowStoreProblem.NewerSchema, writing.Problem);
        Assert.Equal(FlowStoreProblem.NewerSchema, reading.Problem);
        Assert.Contains("newer", reading.Message, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(File1));
    }

    [Fact]
    public async Task A_corrupt_store_fails_with_a_clear_error_not_a_crash_or_an_empty_list()
    {
        await using (var store = SqliteFlowStore.Open(File1))
        {
            var many = Enumerable.Range(0, 300).Select(i => (HttpFlow)Sample()[0] with { Id = Guid.NewGuid() }).ToList();
            await store.AppendAsync(many);
        }

        // Every page but the first (the header with the schema) overwritten.
        var bytes = await File.ReadAllBytesAsync(File1);
        Assert.True(bytes.Length > 8192);
        Array.Fill(bytes, (byte)0xA5, 4096, bytes.Length - 4096);
        await File.WriteAllBytesAsync(File1, bytes);

        var problem = await Assert.ThrowsAsync<FlowStoreException>(async () =>
        {
            await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
            await ToListAsync(reader.QueryAsync());
        });

        Assert.Equal(FlowStoreProblem.Corrupt, problem.Problem);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(File1));
    }

    [Fact]
    public async Task A_version_1_file_is_read_as_it_is_and_migrated_when_opened_for_writing()
    {
        using (var connection = new SqliteConnection($"Data Source={File1};Pooling=False"))
        {
            connection.Open();
            FlowStoreSchema.Migrate(connection, 0, 1);
        }

        await using (var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true }))
        {
            Assert.Equal(1, reader.SchemaVersion);
            Assert.Equal(0, await reader.CountAsync(FlowFilter.Parse("~c 200")));
        }

        Assert.Equal(1, UserVersion(File1));
        await using var writer = SqliteFlowStore.Open(File1);
        Assert.Equal(SqliteFlowStore.CurrentSchemaVersion, writer.SchemaVersion);
        Assert.Equal(SqliteFlowStore.CurrentSchemaVersion, UserVersion(File1));
        await writer.AppendAsync(Sample());
        Assert.Equal(1, await writer.CountAsync(FlowFilter.Parse("~c 404")));
    }

    [Theory]
    [InlineData("7b")] // "{": a JSON text cut short (rows written before schema 4)
    [InlineData("01")] // a record of format 1 cut short after its format byte
    [InlineData("09")] // neither: tab starts a JSON text, which is then empty
    public async Task The_listing_is_read_from_the_columns_without_parsing_any_stored_flow(string storedHex)
    {
        var flows = Sample();
        await using (var store = SqliteFlowStore.Open(File1))
        {
            await store.AppendAsync(flows);
        }

        // Every stored flow made unreadable: what needs it fails, the list (filtered on columns or not) does not.
        using (var connection = new SqliteConnection($"Data Source={File1};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = $"UPDATE flows SET flow = x'{storedHex}'";
            Assert.Equal(flows.Count, command.ExecuteNonQuery());
        }

        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        await Assert.ThrowsAsync<FlowStoreException>(async () => await ToListAsync(reader.QueryAsync()));
        Assert.Equal(flows.Select(FlowListing.From), await ToListAsync(reader.ListAsync()));
        var filter = FlowFilter.Parse("~u \"^https://[a-z]+\\.test/\" | ~c 500");
        Assert.Equal(flows.Where(f => filter.Matches(f.AsFilterable())).Select(FlowListing.From), await ToListAsync(reader.ListAsync(filter)));
    }

    /// <summary>A record's start: format 1, an HTTP flow, an id of zeros.</summary>
    private const string RecordStart = "0101" + "00000000000000000000000000000000";

    [Theory]
    [InlineData(RecordStart + "00" + "d00f", "a time out of range")] // an offset of 1000 minutes (ArgumentOutOfRangeException)
    [InlineData(RecordStart + "0000" + "01" + "808080808040", "truncated")] // a client host of 2^40 bytes (OverflowException)
    [InlineData(RecordStart + "0000" + "00" + "00" + "00" + "feffffff0f", "a count of 2147483647 items")] // int.MaxValue tags (allocated before)
    [InlineData("7b7d", "")] // JSON without the type discriminator (NotSupportedException)
    public async Task A_damaged_stored_flow_is_a_corrupt_store_whatever_the_damage(string storedHex, string expected)
    {
        var flow = Sample()[0];
        await using (var store = SqliteFlowStore.Open(File1))
        {
            await store.AppendAsync([flow]);
        }

        SetStoredFlow(File1, Convert.FromHexString(storedHex));

        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        var ex = await Assert.ThrowsAsync<FlowStoreException>(async () => await ToListAsync(reader.QueryAsync()));
        Assert.Equal(FlowStoreProblem.Corrupt, ex.Problem);
        Assert.Contains("a stored flow does not read back: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(FlowStoreProblem.Corrupt, (await Assert.ThrowsAsync<FlowStoreException>(async () => await reader.GetAsync(flow.Id))).Problem);
    }

    [Theory]
    [InlineData("method", "a request without a method")]
    [InlineData("host", "a request without a host")]
    public async Task A_stored_HTTP_flow_without_its_method_or_host_is_a_corrupt_store(string field, string expected)
    {
        // The reader once took a null there as it came, and handed out a flow whose Method or Host was null, for
        // whatever touched it next to fail on.
        await using (var store = SqliteFlowStore.Open(File1))
        {
            await store.AppendAsync(Sample()[..1]);
        }

        // The record as written, its method or its host made null: a length prefix of 0 (null) in place of the
        // string's (zig-zag length + 1) and bytes.
        var stored = StoredFlow(File1);
        byte[] request = [0x08, .. "GET"u8, 0x0c, .. "https"u8, 0x20, .. "api.example.com"u8];
        var at = stored.AsSpan().IndexOf(request);
        Assert.True(at > 0);
        var (start, length) = field == "method" ? (at, 1 + "GET".Length) : (at + 1 + "GET".Length + 1 + "https".Length, 1 + "api.example.com".Length);
        SetStoredFlow(File1, [.. stored[..start], 0, .. stored[(start + length)..]]);

        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        var ex = await Assert.ThrowsAsync<FlowStoreException>(async () => await ToListAsync(reader.QueryAsync()));
        Assert.Equal(FlowStoreProblem.Corrupt, ex.Problem);
        Assert.Contains("a stored flow does not read back: flow record: " + expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stored_header_field_that_the_flow_model_refuses_is_a_corrupt_store()
    {
        await using (var store = SqliteFlowStore.Open(File1))
        {
            await store.AppendAsync(Sample()[..1]);
        }

        // "Content-Type" becomes "Content Type", no longer a token (RFC 9110 §5.1): HttpHeaders.Add refuses it.
        var stored = StoredFlow(File1);
        var at = stored.AsSpan().IndexOf("Content-Type"u8);
        Assert.True(at > 0);
        stored[at + "Content".Length] = (byte)' ';
        SetStoredFlow(File1, stored);

        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        var ex = await Assert.ThrowsAsync<FlowStoreException>(async () => await ToListAsync(reader.QueryAsync()));
        Assert.Equal(FlowStoreProblem.Corrupt, ex.Problem);
        Assert.Contains("'Content Type' is not a valid header field name", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_certificate_chain_is_stored_once_and_comes_back_with_every_flow_that_presented_it()
    {
        byte[] leaf = [.. Enumerable.Range(0, 900).Select(i => (byte)i)];
        byte[] intermediate = [.. Enumerable.Range(0, 1100).Select(i => (byte)(i * 7))];
        byte[] otherLeaf = [.. Enumerable.Range(0, 800).Select(i => (byte)(i * 3))];
        var template = (HttpFlow)Sample()[0];
        var tls = new FlowTls("Tls13", "TLS_AES_128_GCM_SHA256", "http/1.1", "api.example.com");
        List<Flow> flows =
        [
            .. Enumerable.Range(0, 3).Select(_ => template with { Id = Guid.NewGuid(), ServerTls = tls with { CertificateChain = [leaf, intermediate] } }),
            template with { Id = Guid.NewGuid(), ServerTls = tls with { CertificateChain = [otherLeaf, intermediate] }, ClientTls = tls with { CertificateChain = [leaf] } },
        ];
        await using (var store = SqliteFlowStore.Open(File1))
        {
            await store.AppendAsync(flows[..2]);
            await store.AppendAsync(flows[2..]);
        }

        Assert.Equal(3L, Scalar(File1, "SELECT count(*) FROM certificates"));
        // Not in the flow column, whose records would hold the DER as it is.
        Assert.Equal(0L, Scalar(File1, $"SELECT count(*) FROM flows WHERE instr(flow, x'{Convert.ToHexString(leaf.AsSpan(0, 40))}') > 0"));
        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        foreach (var read in (await ToListAsync(reader.QueryAsync())).Append((await reader.GetAsync(flows[3].Id))!))
        {
            var written = (HttpFlow)flows.Single(f => f.Id == read.Id);
            var http = (HttpFlow)read;
            Assert.Equal(written.ServerTls!.CertificateChain, http.ServerTls!.CertificateChain);
            Assert.Equal(written.ServerTls.Sni, http.ServerTls.Sni);
            Assert.Equal(written.ClientTls?.CertificateChain ?? [], http.ClientTls?.CertificateChain ?? []);
        }
    }

    [Fact]
    public async Task A_version_2_file_is_read_as_it_is_and_migrated_to_one_row_per_flow_with_its_flows_intact()
    {
        var flows = Sample();
        var tls = new FlowTls("Tls13", "TLS_AES_128_GCM_SHA256", "http/1.1", "api.example.com") { CertificateChain = [[1, 2, 3, 4]] };
        flows[0] = (HttpFlow)flows[0] with { ServerTls = tls, Timings = new FlowTimings(null, 1, 2, 3, 4, 5.25) };
        WriteVersion2(File1, flows);

        await using (var old = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true }))
        {
            Assert.Equal(2, old.SchemaVersion);
            Assert.Equal(flows.Select(FlowListing.From), await ToListAsync(old.ListAsync()));
            Assert.Equal(tls.CertificateChain, ((HttpFlow)(await old.GetAsync(flows[0].Id))!).ServerTls!.CertificateChain);
        }

        Assert.Equal(2, UserVersion(File1));
        await using (var writer = SqliteFlowStore.Open(File1))
        {
            Assert.Equal(SqliteFlowStore.CurrentSchemaVersion, writer.SchemaVersion);
            await writer.AppendAsync([Sample()[2]]);
        }

        Assert.Equal(SqliteFlowStore.CurrentSchemaVersion, UserVersion(File1));

        // The migrated rows keep their JSON; the flow appended after the migration is a record (format 1).
        Assert.Equal(flows.Count, Scalar(File1, "SELECT count(*) FROM flows WHERE substr(flow, 1, 1) = x'7b'"));
        Assert.Equal(1L, Scalar(File1, "SELECT count(*) FROM flows WHERE substr(flow, 1, 1) = x'01'"));
        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        Assert.Equal(flows.Select(FlowListing.From), (await ToListAsync(reader.ListAsync())).Take(flows.Count));
        Assert.Equal(flows.Count + 1, await reader.CountAsync());
        var first = (HttpFlow)(await reader.GetAsync(flows[0].Id))!;
        Assert.Equal(tls.CertificateChain, first.ServerTls!.CertificateChain);
        Assert.Equal(((HttpFlow)flows[0]).Response!.Body.Content.ToArray(), first.Response!.Body.Content.ToArray());
        Assert.Equal(2, await reader.CountAsync(FlowFilter.Parse("~c 404")));
    }

    [Fact]
    public async Task A_full_file_fails_the_batch_with_an_IOException_and_what_was_committed_stays_readable()
    {
        await using var store = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { MaxFileBytes = 256 * 1024 });
        await store.AppendAsync(Sample());
        var big = (HttpFlow)Sample()[0];
        var huge = Enumerable.Range(0, 4).Select(_ => big with
        {
            Id = Guid.NewGuid(),
            Response = big.Response! with { Body = FlowBody.FromBytes(new byte[100_000]) },
        }).ToList();

        var full = await Assert.ThrowsAsync<IOException>(async () => await store.AppendAsync(huge));

        Assert.Contains("full", full.Message, StringComparison.Ordinal);
        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        Assert.Equal(Sample().Count, await reader.CountAsync());
    }

    [Fact]
    public async Task A_new_store_has_16_KiB_pages_and_an_older_file_keeps_its_own()
    {
        await using (var store = SqliteFlowStore.Open(File1))
        {
            await store.AppendAsync(Sample());
        }

        Assert.Equal(16 * 1024, Scalar(File1, "PRAGMA page_size"));

        // A file SQLite made with its default 4 KiB pages (a store of an earlier version) is migrated with them.
        var older = Path.Combine(_dir, "older.db");
        using (var connection = new SqliteConnection($"Data Source={older};Pooling=False"))
        {
            connection.Open();
            FlowStoreSchema.Migrate(connection, 0, 1);
        }

        await using (var store = SqliteFlowStore.Open(older))
        {
            await store.AppendAsync(Sample());
            Assert.Equal(Sample().Count, await store.CountAsync());
        }

        Assert.Equal(4096, Scalar(older, "PRAGMA page_size"));
    }

    [Fact]
    public async Task The_writer_never_checkpoints_so_that_no_commit_waits_for_one()
    {
        // No checkpoint requests at all: whatever reaches the database file would have been the writer's own checkpoint
        // (SQLite's default after 1,000 pages; the store's before it checkpointed on a connection of its own).
        await using var store = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { WalCheckpointBytes = long.MaxValue });
        var checkpoints = 0;
        store.Checkpointed += _ => Interlocked.Increment(ref checkpoints);
        await store.AppendAsync(Sample());
        var before = new FileInfo(File1).Length;

        for (var i = 0; i < 6; i++)
        {
            await store.AppendAsync(BigFlows(8));
        }

        Assert.Equal(before, new FileInfo(File1).Length);
        Assert.True(new FileInfo(File1 + "-wal").Length > 6 * BigFlowsBytes(8), "every commit is in the WAL");
        Assert.Equal(0, Volatile.Read(ref checkpoints));
        Assert.Equal(Sample().Count + 48, await store.CountAsync());
    }

    [Fact]
    public async Task Past_its_threshold_the_store_checkpoints_on_a_connection_of_its_own_and_the_WAL_starts_over()
    {
        await using var store = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { WalCheckpointBytes = BigFlowsBytes(8) / 2 });
        var copied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var checkpoints = 0;
        store.Checkpointed += left =>
        {
            Interlocked.Increment(ref checkpoints);
            if (left == 0)
            {
                copied.TrySetResult();
            }
        };

        await store.AppendAsync(BigFlows(8));
        var walAfterFirst = new FileInfo(File1 + "-wal").Length;
        await copied.Task.WaitAsync(TimeSpan.FromMinutes(1));

        Assert.True(new FileInfo(File1).Length > BigFlowsBytes(8), "the flows were copied into the database file");
        Assert.Equal(1, Volatile.Read(ref checkpoints));

        // Every frame was copied: the next commit writes the WAL from its start instead of growing it.
        await store.AppendAsync(BigFlows(8));
        Assert.True(new FileInfo(File1 + "-wal").Length <= walAfterFirst, "the WAL started over");
        Assert.Equal(16, await store.CountAsync());
    }

    [Fact]
    public async Task Under_a_steady_stream_of_commits_the_WAL_still_starts_over_and_stays_bounded()
    {
        // SQLite starts the WAL over only when a write transaction begins with every frame copied. Under load a commit
        // lands after each checkpoint from a transaction that began before it (the recorder's next batch): here another
        // connection begins one as the checkpoint starts and commits it as the checkpoint ends, so the store's writer
        // never begins with every frame copied. Without the store's own restart the WAL grew by every batch.
        const int Rounds = 16;
        var batch = BigFlowsBytes(8);
        var limit = 2 * batch;
        await using var store = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { WalCheckpointBytes = batch / 2, WalLimitBytes = limit });
        await store.AppendAsync(Sample());
        using var other = new SqliteConnection($"Data Source={File1};Pooling=False");
        other.Open();
        using (var create = other.CreateCommand())
        {
            create.CommandText = "CREATE TABLE other_writer (x BLOB);";
            create.ExecuteNonQuery();
        }

        SqliteTransaction? pending = null;
        store.BeforeCheckpointPass = () =>
        {
            if (pending is null)
            {
                pending = other.BeginTransaction();
                using var insert = other.CreateCommand();
                insert.CommandText = "INSERT INTO other_writer VALUES (zeroblob(4096));";
                insert.ExecuteNonQuery();
            }
        };

        var restarts = 0;
        store.WalRestarted += () => Interlocked.Increment(ref restarts);
        TaskCompletionSource checkpointed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        store.Checkpointed += _ =>
        {
            pending?.Commit();
            pending?.Dispose();
            pending = null;
            checkpointed.TrySetResult();
        };

        long largest = 0;
        for (var round = 0; round < Rounds; round++)
        {
            // Each batch passes the checkpoint threshold: one request, with the other writer's transaction around it.
            checkpointed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            await store.AppendAsync(BigFlows(8));
            await checkpointed.Task.WaitAsync(TimeSpan.FromMinutes(1));
            largest = Math.Max(largest, new FileInfo(File1 + "-wal").Length);
        }

        Assert.True(largest <= limit + 2 * batch, $"the WAL stayed near its limit ({largest:N0} bytes at most, limit {limit:N0})");
        Assert.True(Volatile.Read(ref restarts) > 0, "the writer started the WAL over");
        Assert.Equal(Sample().Count + Rounds * 8, await store.CountAsync());
    }

    [Fact]
    public async Task The_writer_never_waits_for_a_reader_to_start_the_WAL_over_and_tries_again_after_it()
    {
        // The limit is one and a half batches: a single batch stays under it, two pass it.
        var batch = BigFlowsBytes(8);
        await using var store = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { WalCheckpointBytes = batch / 2, WalLimitBytes = 3 * batch / 2 });
        var restarts = 0;
        store.WalRestarted += () => Interlocked.Increment(ref restarts);
        TaskCompletionSource checkpointed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        store.Checkpointed += _ => checkpointed.TrySetResult();
        async Task AppendBatchAndCheckpointAsync()
        {
            checkpointed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            await store.AppendAsync(BigFlows(8));
            await checkpointed.Task.WaitAsync(TimeSpan.FromMinutes(1));
        }

        await AppendBatchAndCheckpointAsync();

        // Flows no checkpoint has copied yet, then a reader (the web UI's list, say) whose snapshot includes them: it
        // reads them from the WAL, so the WAL cannot start over under it.
        await store.AppendAsync(Sample());
        using var reader = new SqliteConnection($"Data Source={File1};Mode=ReadOnly;Pooling=False");
        reader.Open();
        using var snapshot = reader.BeginTransaction();
        using (var count = reader.CreateCommand())
        {
            count.CommandText = "SELECT count(*) FROM flows;";
            Assert.Equal(8L + Sample().Count, count.ExecuteScalar());
        }

        // Two batches past the limit: the checkpointer asks for a restart, and the next commit's RESTART finds the reader.
        await AppendBatchAndCheckpointAsync();
        await AppendBatchAndCheckpointAsync();
        await store.AppendAsync(Sample()).AsTask().WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(0, Volatile.Read(ref restarts));

        // The reader is done: the commit after it starts the WAL over.
        snapshot.Rollback();
        await store.AppendAsync(Sample());
        Assert.Equal(1, Volatile.Read(ref restarts));
        Assert.Equal(24 + 3 * Sample().Count, await store.CountAsync());
    }

    [Fact]
    public async Task Once_the_WAL_starts_over_its_file_is_cut_back_to_the_limit()
    {
        // Three batches before the first checkpoint: the WAL file grows to three batches.
        var batch = BigFlowsBytes(8);
        await using var store = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { WalCheckpointBytes = 3 * batch, WalLimitBytes = batch });
        var copied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        store.Checkpointed += left =>
        {
            if (left == 0)
            {
                copied.TrySetResult();
            }
        };

        for (var i = 0; i < 3; i++)
        {
            await store.AppendAsync(BigFlows(8));
        }

        var grown = new FileInfo(File1 + "-wal").Length;
        await copied.Task.WaitAsync(TimeSpan.FromMinutes(1));

        // The next batch writes the WAL from its start, and its commit cuts the file to the limit (journal_size_limit)
        // instead of leaving it at the largest it ever was.
        await store.AppendAsync(BigFlows(8));
        var after = new FileInfo(File1 + "-wal").Length;
        Assert.True(grown > 2 * batch, $"the WAL grew first ({grown:N0} bytes)");
        Assert.True(after < grown && after <= batch + batch / 8, $"the WAL file was cut back ({grown:N0} to {after:N0} bytes, limit {batch:N0})");
        Assert.Equal(32, await store.CountAsync());
    }

    [Fact]
    public async Task A_new_store_and_its_WAL_are_readable_by_the_user_alone()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        await using var store = SqliteFlowStore.Open(File1);
        await store.AppendAsync(Sample());

        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(Private, File.GetUnixFileMode(File1));
        Assert.Equal(Private, File.GetUnixFileMode(File1 + "-wal"));
    }

    [Fact]
    public async Task Opening_a_missing_file_read_only_says_so_and_creates_nothing()
    {
        var missing = Path.Combine(_dir, "missing.db");
        var problem = Assert.Throws<FlowStoreException>(() => SqliteFlowStore.Open(missing, new SqliteFlowStoreOptions { ReadOnly = true }));
        Assert.Equal(FlowStoreProblem.NotFound, problem.Problem);
        Assert.False(File.Exists(missing));
        await Task.CompletedTask;
    }

    internal static List<Flow> Sample()
    {
        var gz = new MemoryStream();
        using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write("{\"hello\":\"world\"}"u8);
        }

        return
        [
            Http("GET", "https", "api.example.com", "/api/items", Response(200, gz.ToArray(), "Content-Encoding: gzip", "Content-Type: application/json")),
            Http("POST", "http", "forms.test", "/submit", Response(201, "created"u8.ToArray()), "hello=world&x=1"u8.ToArray()),
            Http("GET", "http", "forms.test", "/missing", Response(404, "not found"u8.ToArray())),
            Http("GET", "https", "example.com", "/boom", Response(500, []), Start.AddSeconds(3)),
            Http("DELETE", "http", "down.test", "/x", null) with { Error = new FlowError("connect", "connection refused", true) },
            new TunnelFlow { Id = Guid.CreateVersion7(Start.AddSeconds(9)), StartedAt = Start.AddSeconds(9), Kind = TunnelKind.TlsPassthrough, Host = "pass.test", Port = 443, BytesFromClient = 10, BytesFromServer = 20 },
        ];
    }

    [Fact]
    public async Task The_tail_holds_only_committed_flows_and_its_sequence_is_below_every_flow_announced_after_it()
    {
        List<SequencedFlow> announced = [];
        await using var store = SqliteFlowStore.Open(File1, observer: new DelegateObserver(stored: announced.AddRange));
        var flows = Enumerable.Range(0, 5).Select(i => Http("GET", "https", "tail.test", "/" + i, Response(i == 2 ? 404 : 200, []))).ToList();
        await store.AppendAsync(flows[..2]);
        Assert.Equal([1L, 2], announced.Select(f => f.Sequence));

        // Written into the open batch: not readable, not announced, not in the tail.
        await store.WriteAsync(flows[2], CancellationToken.None);
        await store.WriteAsync(flows[3], CancellationToken.None);
        var tail = await store.TailAsync(null, 10);
        Assert.Equal((0L, 2L, 2L), (tail.Offset, tail.Total, tail.Sequence!.Value));
        Assert.Equal(flows[..2].Select(f => f.Id), tail.Flows.Select(f => f.Id));

        // Committed: announced, numbered past the tail's sequence.
        await store.FlushAsync(CancellationToken.None);
        Assert.Equal([(flows[2].Id, 3L), (flows[3].Id, 4L)], announced.Skip(2).Select(f => (f.Flow.Id, f.Sequence)));
        Assert.All(announced.Skip(2), f => Assert.True(f.Sequence > tail.Sequence));

        // A filtered tail: the last matching flows at their position among the matches.
        tail = await store.TailAsync(FlowFilter.Parse("~c 200"), 2);
        Assert.Equal((1L, 3L, 4L), (tail.Offset, tail.Total, tail.Sequence!.Value));
        Assert.Equal([flows[1].Id, flows[3].Id], tail.Flows.Select(f => f.Id));

        // A flow appended again keeps its number; the newest deleted, its number is not given again.
        await store.AppendAsync([flows[0] with { Marker = ":star:" }]);
        Assert.Equal((1L, true), (announced[^1].Sequence, announced[^1].Replaced));
        await store.DeleteByIdAsync([flows[3].Id]);
        await store.AppendAsync([flows[4]]);
        Assert.Equal((5L, false), (announced[^1].Sequence, announced[^1].Replaced));
        Assert.Equal(5, (await store.TailAsync(null, 0)).Sequence);
    }

    [Fact]
    public async Task A_read_only_store_gives_its_tail_and_refuses_an_observer()
    {
        await using (var writer = SqliteFlowStore.Open(File1))
        {
            await writer.AppendAsync(Sample());
        }

        Assert.Throws<ArgumentException>(() => SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true }, observer: new DelegateObserver()));
        await using var reader = SqliteFlowStore.Open(File1, new SqliteFlowStoreOptions { ReadOnly = true });
        var all = await ToListAsync(reader.QueryAsync());
        var tail = await reader.TailAsync(null, 2, includeBodies: true);
        Assert.Equal((all.Count - 2L, (long)all.Count, (long)all.Count), (tail.Offset, tail.Total, tail.Sequence!.Value));
        Assert.Equal(all.TakeLast(2).Select(f => f.Id), tail.Flows.Select(f => f.Id));
    }

    /// <summary>Size of the body of each of <see cref="BigFlows"/>: 512 KiB.</summary>
    private const int BigBodyBytes = 512 * 1024;

    /// <summary><paramref name="count"/> flows with a response body of <see cref="BigBodyBytes"/> each.</summary>
    private static List<HttpFlow> BigFlows(int count) =>
    [
        .. Enumerable.Range(0, count).Select(i => Http("GET", "https", "big.test", "/" + i, Response(200, new byte[BigBodyBytes]))),
    ];

    private static long BigFlowsBytes(int count) => (long)count * BigBodyBytes;

    private static HttpFlow Http(string method, string scheme, string host, string path, FlowResponse? response, byte[]? body = null) =>
        Http(method, scheme, host, path, response, Start, body);

    private static HttpFlow Http(string method, string scheme, string host, string path, FlowResponse? response, DateTimeOffset at, byte[]? body = null) => new()
    {
        Id = Guid.NewGuid(),
        StartedAt = at,
        ClientHttpVersion = "HTTP/1.1",
        Client = new FlowEndpoint("127.0.0.1", 50000),
        Request = new FlowRequest
        {
            Method = method,
            Scheme = scheme,
            Host = host,
            Port = scheme == "https" ? 443 : 80,
            Path = path,
            HttpVersion = "HTTP/1.1",
            Headers = Headers("Host: " + host, "User-Agent: test"),
            Body = FlowBody.FromBytes(body ?? []),
        },
        Response = response,
    };

    private static FlowResponse Response(int status, byte[] body, params string[] headers) => new()
    {
        StatusCode = status,
        HttpVersion = "HTTP/1.1",
        Headers = Headers(headers),
        Body = FlowBody.FromBytes(body),
    };

    private static HttpHeaders Headers(params string[] lines)
    {
        var headers = new HttpHeaders();
        foreach (var line in lines)
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers.Add(line[..colon], line[(colon + 1)..].Trim());
        }

        return headers;
    }

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> flows)
    {
        var list = new List<T>();
        await foreach (var flow in flows)
        {
            list.Add(flow);
        }

        return list;
    }

    private static void SetUserVersion(string path, int version)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"PRAGMA user_version = {version}";
        command.ExecuteNonQuery();
    }

    /// <summary>A file as schema version 2 wrote it (the code before one row per flow): flows, flow_json (the JSON
    /// without body bytes, certificates inside), bodies.</summary>
    private static void WriteVersion2(string path, List<Flow> flows)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        FlowStoreSchema.Migrate(connection, 0, 2);
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO flows (id, kind, started_at, method, host, url, status_code, error) VALUES ($id, $kind, $started, $method, $host, $url, $status, $error);
            INSERT INTO flow_json (seq, json) VALUES (last_insert_rowid(), $json);
            INSERT INTO bodies (key, content) SELECT seq * 2 + 1, $response FROM flow_json WHERE seq = last_insert_rowid() AND $response IS NOT NULL;
            """;
        foreach (var flow in flows)
        {
            var view = flow.AsFilterable();
            var http = flow as HttpFlow;
            var withoutBodies = http is null ? flow : http with
            {
                Request = http.Request with { Body = http.Request.Body.WithoutContent() },
                Response = http.Response is null ? null : http.Response with { Body = http.Response.Body.WithoutContent() },
            };
            var json = new System.Buffers.ArrayBufferWriter<byte>();
            using (var w = new System.Text.Json.Utf8JsonWriter(json))
            {
                FlowJson.Write(w, withoutBodies);
            }

            command.Parameters.Clear();
            command.Parameters.AddWithValue("$id", flow.Id.ToByteArray(bigEndian: true));
            command.Parameters.AddWithValue("$kind", http is null ? "tunnel" : "http");
            command.Parameters.AddWithValue("$started", flow.StartedAt.ToUnixTimeMilliseconds());
            command.Parameters.AddWithValue("$method", (object?)view.Method ?? DBNull.Value);
            command.Parameters.AddWithValue("$host", (object?)view.Host ?? DBNull.Value);
            command.Parameters.AddWithValue("$url", (object?)view.Url ?? DBNull.Value);
            command.Parameters.AddWithValue("$status", (object?)view.StatusCode ?? DBNull.Value);
            command.Parameters.AddWithValue("$error", view.HasError ? 1 : 0);
            command.Parameters.AddWithValue("$json", json.WrittenMemory.ToArray());
            command.Parameters.AddWithValue("$response", http?.Response is { Body.Content.IsEmpty: false } r ? r.Body.Content.ToArray() : DBNull.Value);
            command.ExecuteNonQuery();
        }
    }

    private static byte[] StoredFlow(string path)
    {
        using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT flow FROM flows";
        return (byte[])command.ExecuteScalar()!;
    }

    private static void SetStoredFlow(string path, byte[] stored)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE flows SET flow = $flow";
        command.Parameters.AddWithValue("$flow", stored);
        Assert.Equal(1, command.ExecuteNonQuery());
    }

    private static long Scalar(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }

    private static long UserVersion(string path)
    {
        using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA user_version";
        return (long)command.ExecuteScalar()!;
    }
}
