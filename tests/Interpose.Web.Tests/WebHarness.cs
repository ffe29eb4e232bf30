using System.Collections.Concurrent;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using Interpose.Proxy;
using Interpose.Proxy.Intercept;
using Interpose.Proxy.Tests.Infrastructure;
using Interpose.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Web.Tests;

/// <summary>
/// The whole thing on loopback: a Kestrel origin (plain and TLS), a real proxy recording into an in-memory store
/// (`run --web`) or a SQLite file (`run --web -w FILE`) whose observer is the live list's feed, an intercept addon, and
/// the web UI on 127.0.0.1:0, as `interpose run --web` wires them.
/// </summary>
public sealed class WebHarness : IAsyncDisposable
{
    private readonly string _directory;
    private readonly FlowRecorder? _recorder;

    private WebHarness(string directory, KestrelOrigin origin, KestrelOrigin tlsOrigin, TestProxy? proxy, FlowRecorder? recorder, IFlowStore store, FlowFeed feed, InterceptAddon intercept, WebUiServer web)
    {
        _directory = directory;
        Origin = origin;
        TlsOrigin = tlsOrigin;
        Proxy = proxy;
        _recorder = recorder;
        Store = store;
        Feed = feed;
        Intercept = intercept;
        Web = web;
        Api = new HttpClient { BaseAddress = new Uri(web.Url.GetLeftPart(UriPartial.Authority)), Timeout = TimeSpan.FromSeconds(30) };
        Api.DefaultRequestHeaders.Add(WebUiServer.TokenHeader, web.Token);
    }

    /// <summary>What the origins received: "METHOD path | X-Test header | body".</summary>
    public static ConcurrentQueue<string> Seen { get; } = new();

    public KestrelOrigin Origin { get; }

    public KestrelOrigin TlsOrigin { get; }

    public TestProxy? Proxy { get; }

    /// <summary>The store the UI reads: a <see cref="MemoryFlowStore"/> unless started with a file.</summary>
    public IFlowStore Store { get; }

    public FlowFeed Feed { get; }

    public InterceptAddon Intercept { get; }

    public WebUiServer Web { get; }

    /// <summary>An API client with the token.</summary>
    public HttpClient Api { get; }

    public Uri WebRoot => new(Web.Url.GetLeftPart(UriPartial.Authority) + "/");

    /// <summary>Starts everything; <paramref name="readOnly"/> opens a store that <paramref name="seed"/> filled, as
    /// `interpose web FILE` does, with no proxy. A live UI records in memory (<paramref name="memory"/>'s caps) as
    /// `run --web` does, or into a SQLite file with <paramref name="file"/>, as `run --web -w FILE` does.
    /// <paramref name="webClock"/> is the web UI's clock (the live stream's pause between pushes).</summary>
    public static async Task<WebHarness> StartAsync(ITestOutputHelper? output = null, bool readOnly = false, Func<SqliteFlowStore, Task>? seed = null, TimeSpan? interceptTimeout = null, TimeProvider? interceptClock = null, int maxPaused = InterceptAddon.DefaultMaxPaused, bool file = false, MemoryFlowStoreOptions? memory = null, TimeProvider? webClock = null)
    {
        var directory = Directory.CreateTempSubdirectory("interpose-web-test-").FullName;
        var path = Path.Combine(directory, "flows.db");
        var origin = await KestrelOrigin.StartAsync(MapOrigin);
        var tlsOrigin = await KestrelOrigin.StartAsync(MapOrigin, TestPki.Issue(TestPki.OriginRoot, "localhost"));
        var feed = new FlowFeed();
        var replayMarker = new WebReplayMarker();
        var uiTraffic = new WebUiTrafficMarker();
        var intercept = new InterceptAddon(interceptTimeout ?? ProxyTimeouts.DefaultResponseHead, interceptClock) { MaxPaused = maxPaused };
        IFlowStore store;
        TestProxy? proxy = null;
        FlowRecorder? recorder = null;
        if (readOnly)
        {
            await using (var writer = SqliteFlowStore.Open(path))
            {
                if (seed is not null)
                {
                    await seed(writer);
                }
            }

            store = SqliteFlowStore.Open(path, new SqliteFlowStoreOptions { ReadOnly = true });
        }
        else
        {
            Core.Flows.IFlowSink sink;
            if (file)
            {
                var sqlite = SqliteFlowStore.Open(path, observer: feed);
                (store, sink) = (sqlite, sqlite);
            }
            else
            {
                var inMemory = new MemoryFlowStore(memory, observer: feed);
                (store, sink) = (inMemory, inMemory);
            }

            recorder = new FlowRecorder(sink);
            proxy = await TestProxy.StartAsync(output, o =>
            {
                o.Http2 = true;
                o.Addons.Add(uiTraffic);
                o.Addons.Add(replayMarker);
                o.Addons.Add(intercept);
                o.Addons.Add(recorder);
            });
        }

        var web = new WebUiServer(new WebUiOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            Store = store,
            ReadOnly = readOnly,
            Feed = readOnly ? null : feed,
            Intercept = readOnly ? null : intercept,
            ReplayMarker = replayMarker,
            ProxyUrl = proxy?.Url,
            ProxyCertificateAuthority = proxy?.Authority.Certificate,
            TimeProvider = webClock ?? TimeProvider.System,
        });
        await web.StartAsync();
        uiTraffic.Serve(web.EndPoint);
        return new WebHarness(directory, origin, tlsOrigin, proxy, recorder, store, feed, intercept, web);
    }

    /// <summary>A client through the proxy (HTTP/2 to TLS origins when asked for with the request's version).</summary>
    public HttpClient ProxyClient() => Proxy!.CreateClient();

    /// <summary>Waits until the store has a flow matching <paramref name="predicate"/>: polls the store after each
    /// announcement on the feed (no sleeping).</summary>
    public async Task<Core.Flows.Flow> WaitForFlowAsync(Func<Core.Flows.Flow, bool> predicate)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var subscription = Feed.Subscribe(null, null);
        while (true)
        {
            await foreach (var flow in Store.QueryAsync(cancellationToken: timeout.Token))
            {
                if (predicate(flow))
                {
                    return flow;
                }
            }

            await subscription.Reader.ReadAsync(timeout.Token);
        }
    }

    /// <summary>Waits until an exchange is paused; returns it.</summary>
    public async Task<InterceptedExchange> WaitForPausedAsync(InterceptPhase phase = InterceptPhase.Request)
    {
        var changed = new SemaphoreSlim(0);
        void OnChanged(object? sender, EventArgs e) => changed.Release();
        Intercept.Changed += OnChanged;
        try
        {
            while (true)
            {
                if (Intercept.Paused.FirstOrDefault(p => p.Phase == phase) is { } paused)
                {
                    return paused;
                }

                Assert.True(await changed.WaitAsync(TimeSpan.FromSeconds(30)), "nothing was paused");
            }
        }
        finally
        {
            Intercept.Changed -= OnChanged;
        }
    }

    public static StringContent Json(string json) => new(json, Encoding.UTF8, new MediaTypeHeaderValue("application/json"));

    public async ValueTask DisposeAsync()
    {
        Api.Dispose();
        await Web.DisposeAsync();
        if (Proxy is not null)
        {
            await Proxy.DisposeAsync();
        }

        if (_recorder is not null)
        {
            await _recorder.DisposeAsync();
        }

        await Store.DisposeAsync();
        await Origin.DisposeAsync();
        await TlsOrigin.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }

    private static void MapOrigin(WebApplication app)
    {
        app.MapGet("/hello", () => "hello from origin");
        app.MapGet("/json", (HttpContext context) =>
        {
            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync("{\"name\":\"interpose\",\"items\":[1,2,3]}");
        });
        app.MapGet("/missing", (HttpContext context) =>
        {
            context.Response.StatusCode = 404;
            return context.Response.WriteAsync("not here");
        });
        app.MapMethods("/echo", ["GET", "POST", "PUT"], async (HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            var seen = $"{context.Request.Method} {context.Request.Path}{context.Request.QueryString} | {context.Request.Headers["X-Test"]} | {body}";
            Seen.Enqueue(seen);
            context.Response.ContentType = "text/plain";
            await context.Response.WriteAsync("echo: " + seen);
        });
    }
}
