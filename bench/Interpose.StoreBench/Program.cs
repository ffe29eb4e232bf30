using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Store;

// dotnet run -c Release --project bench/Interpose.StoreBench -- FILE [FLOWS] [FILTER...]
// Fills FILE (when it does not exist yet) with FLOWS synthetic flows through the IFlowSink path a recorder uses, then
// times QueryAsync (what `interpose flows list` does, minus printing) for each filter.
// dotnet run -c Release --project bench/Interpose.StoreBench -- --write FILE FLOWS BATCH [ROUNDS]
// The recorder's cost: writes FLOWS prebuilt flows into a new FILE through IFlowSink in batches of BATCH, and prints the
// process CPU time per flow (user + system, so SQLite's work and the OS's are in it) for each round.
// dotnet run -c Release --project bench/Interpose.StoreBench -- --log-write FILE FLOWS BATCH [ROUNDS]
// The same measurement for LogIndexPrototype (records and bodies in FILE.log, a narrow index in FILE), to set beside
// --write's: what that design would save per flow. --segment-write: the log's bytes in FILE itself, a row per batch.
if (args.Length > 0 && args[0] is "--write" or "--log-write" or "--segment-write")
{
    var mode = args[0];
    var flows = int.Parse(args[2], CultureInfo.InvariantCulture);
    var batch = int.Parse(args[3], CultureInfo.InvariantCulture);
    var rounds = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 3;
    var at = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    var prebuilt = Enumerable.Range(0, flows).Select(i => (Flow)Synthetic(i, at)).ToList();
    for (var round = 0; round <= rounds; round++)
    {
        foreach (var file in new[] { args[1], args[1] + "-wal", args[1] + "-shm", args[1] + ".log" })
        {
            File.Delete(file);
        }

        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        if (mode == "--write")
        {
            await using var store = SqliteFlowStore.Open(args[1], new SqliteFlowStoreOptions { BatchSize = batch });
            foreach (var flow in prebuilt)
            {
                await store.WriteAsync(flow, CancellationToken.None);
            }
        }
        else
        {
            LogIndexPrototype.Write(args[1], prebuilt, batch, inFile: mode == "--segment-write");
        }

        var used = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        Console.WriteLine($"{(round == 0 ? "warm-up" : "round " + round)}: batch {batch}: {used.TotalMicroseconds / flows:0.0} µs CPU/flow, {wall.Elapsed.TotalMicroseconds / flows:0.0} µs wall/flow");
    }

    return;
}

// dotnet run -c Release --project bench/Interpose.StoreBench -- --memory-write FLOWS [MAX_FLOWS [FILTER [decode]]]
// The web UI's store: writes FLOWS synthetic flows into a MemoryFlowStore capped at MAX_FLOWS (default 100,000), as the
// recorder does (a flush every 256), and prints the process's RSS, the GC's heap and committed bytes and the collections
// every 50,000 flows, then the CPU per flow. With FILTER, the store's observer counts the evicted flows it matches, as a
// browser's filtered list does (FlowFeed): through the list's own matching, or with "decode" by decoding each flow.
if (args.Length > 0 && args[0] == "--memory-write")
{
    var flows = int.Parse(args[1], CultureInfo.InvariantCulture);
    var cap = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 100_000;
    var evictionFilter = args.Length > 3 ? FlowFilter.Parse(args[3]) : null;
    var decode = args.Length > 4 && args[4] == "decode";
    long evictedMatching = 0;
    Action<IReadOnlyList<Flow>>? evicted = evictionFilter is null ? null : list =>
    {
        for (var i = 0; i < list.Count; i++)
        {
            var matches = !decode && list is IFilterableFlowList filterable
                ? filterable.Matches(i, evictionFilter)
                : evictionFilter.Matches(list[i].AsFilterable());
            evictedMatching += matches ? 1 : 0;
        }
    };
    var at = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    await using var store = new MemoryFlowStore(new MemoryFlowStoreOptions { MaxFlows = cap }, observer: evicted is null ? null : new EvictionCounter(evicted));
    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
    for (var i = 0; i < flows; i++)
    {
        await store.WriteAsync(Synthetic(i, at), CancellationToken.None);
        if ((i + 1) % 256 == 0)
        {
            await store.FlushAsync(CancellationToken.None);
        }

        if ((i + 1) % 50_000 == 0)
        {
            var info = GC.GetGCMemoryInfo();
            Console.WriteLine($"  {i + 1:N0} flows: RSS {Environment.WorkingSet / (1024 * 1024)} MiB, heap {info.HeapSizeBytes / (1024 * 1024)} MiB, committed {info.TotalCommittedBytes / (1024 * 1024)} MiB, records {store.RecordBytes / (1024 * 1024)} MiB, GCs {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}, pause {GC.GetTotalPauseDuration().TotalMilliseconds:0} ms");
        }
    }

    Console.WriteLine($"{(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMicroseconds / flows:0.0} µs CPU per flow (making the synthetic flow included)"
        + (evictionFilter is null ? "" : $"; {evictedMatching:N0} evicted flows matched {evictionFilter}"));
    return;
}

// Flows per progress line of a fill.
const int FillSegment = 250_000;

var path = args.Length > 0 ? args[0] : "bench-flows.db";
var count = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1_000_000;
string[] filters = args.Length > 2 ? args[2..] : ["~c 500", "~c 404 & ~u /items/99", "~m POST & ~d host3\\.test", "~u \"/items/[0-9]*7\\?page=3$\"", "~hs \"x-trace: 0004[0-9]\""];

if (!File.Exists(path))
{
    var clock = Stopwatch.StartNew();
    await using (var store = SqliteFlowStore.Open(path))
    {
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var segment = Stopwatch.StartNew();
        var segmentCpu = Process.GetCurrentProcess().TotalProcessorTime;
        for (var i = 0; i < count; i++)
        {
            await store.WriteAsync(Synthetic(i, start), CancellationToken.None);
            if ((i + 1) % FillSegment == 0)
            {
                // Whether writing slows as the file grows: each segment's rate and CPU per flow (building the synthetic
                // flow included, the same for every segment).
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                Console.WriteLine($"  flows {i + 1 - FillSegment:N0}-{i + 1:N0}: {FillSegment / segment.Elapsed.TotalSeconds:N0} flows/s, {(cpu - segmentCpu).TotalMicroseconds / FillSegment:0.0} µs CPU/flow; GCs so far gen0/1/2 {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}, paused {GC.GetTotalPauseDuration().TotalSeconds:0.0} s, heap {GC.GetTotalMemory(false) / (1024 * 1024)} MiB");
                segment.Restart();
                segmentCpu = cpu;
            }
        }

        await store.FlushAsync(CancellationToken.None);
    }

    var seconds = clock.Elapsed.TotalSeconds;
    Console.WriteLine($"filled {count:N0} flows in {seconds:0.0} s ({count / seconds:N0} flows/s); file {new FileInfo(path).Length / (1024.0 * 1024):0.0} MiB");
}

await using (var reader = SqliteFlowStore.Open(path, new SqliteFlowStoreOptions { ReadOnly = true }))
{
    foreach (var expression in filters)
    {
        var filter = FlowFilter.Parse(expression);
        var plan = FilterSqlPushDown.Plan(filter.Root);
        var clock = Stopwatch.StartNew();
        var matched = 0;
        await foreach (var flow in reader.QueryAsync(new FlowQuery { Filter = filter }))
        {
            matched++;
        }

        Console.WriteLine($"{expression,-28} {matched,9:N0} flows in {clock.Elapsed.TotalMilliseconds,8:N0} ms  (SQL: {plan.WhereClause}; residual: {(plan.IsExact ? "none" : "yes")})");
    }
}

// Twenty hosts, a few hundred paths, 5% 404s, 1% 500s, 10% POSTs with a 200-byte body, responses of 300 bytes to 2 KiB;
// HTTPS with each host's certificate (1,200 bytes, the size of a typical RSA-2048 leaf), as the recorder keeps it.
static HttpFlow Synthetic(int i, DateTimeOffset start)
{
    var certificate = BenchCertificates.PerHost[i % 20];
    var host = $"host{i % 20}.test";
    var post = i % 10 == 3;
    var status = i % 20 == 7 ? 404 : i % 100 == 42 ? 500 : 200;
    var requestHeaders = new HttpHeaders();
    requestHeaders.Add("Host", host);
    requestHeaders.Add("User-Agent", "bench/1.0");
    requestHeaders.Add("Accept", "application/json");
    var responseHeaders = new HttpHeaders();
    responseHeaders.Add("Content-Type", "application/json");
    responseHeaders.Add("X-Trace", (i % 100_000).ToString("00000", CultureInfo.InvariantCulture));
    var body = Encoding.UTF8.GetBytes("{\"id\":" + i.ToString(CultureInfo.InvariantCulture) + ",\"data\":\"" + new string('x', 300 + (i % 1700)) + "\"}");
    var at = start.AddMilliseconds(i * 10L);
    return new HttpFlow
    {
        Id = Guid.CreateVersion7(at),
        StartedAt = at,
        Client = new FlowEndpoint("127.0.0.1", 40000 + (i % 20000)),
        Server = new FlowEndpoint("10.0.0." + (i % 20), 443),
        ClientHttpVersion = "HTTP/1.1",
        ServerHttpVersion = "HTTP/1.1",
        Request = new FlowRequest
        {
            Method = post ? "POST" : "GET",
            Scheme = "https",
            Host = host,
            Port = 443,
            Path = $"/api/items/{i % 997}?page={i % 7}",
            HttpVersion = "HTTP/1.1",
            Headers = requestHeaders,
            Body = post ? FlowBody.FromBytes(RandomNumberGenerator.GetBytes(200)) : FlowBody.Empty,
        },
        Response = new FlowResponse { StatusCode = status, HttpVersion = "HTTP/1.1", Headers = responseHeaders, Body = FlowBody.FromBytes(body) },
        Timings = new FlowTimings(0.5, 1.2, 3.4, 3.5, 10.25, 11.0),
        ServerTls = new FlowTls("Tls13", "TLS_AES_256_GCM_SHA384", "http/1.1", host) { CertificateChain = [certificate] },
    };
}

/// <summary>One certificate (a DER array) per host, shared by its flows as the recorder shares one array per
/// certificate object: a new array per flow would grow the store's hash cache by one entry a flow.</summary>
internal static class BenchCertificates
{
    public static readonly byte[][] PerHost = [.. Enumerable.Range(0, 20).Select(static host =>
    {
        var der = new byte[1200];
        new Random(host).NextBytes(der);
        return der;
    })];
}

/// <summary>The web UI's observer, as far as the benchmark needs it: the flows kept are ignored, the evicted counted.</summary>
internal sealed class EvictionCounter(Action<IReadOnlyList<Flow>> evicted) : IFlowStoreObserver
{
    public void Stored(IReadOnlyList<SequencedFlow> flows)
    {
    }

    public void Evicted(IReadOnlyList<Flow> flows, IReadOnlyList<long> evictedBy) => evicted(flows);
}
