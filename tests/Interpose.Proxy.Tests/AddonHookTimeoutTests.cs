using System.Collections.Concurrent;
using System.Text;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// Every addon hook call is bounded by <see cref="ProxyTimeouts.AddonHook"/>: at the deadline the hook's token is
/// cancelled and, if the hook still does not return, the proxy stops waiting for it. Time is a <see cref="ManualClock"/>:
/// the deadline passes when the test says so, never by waiting.
/// </summary>
public sealed class AddonHookTimeoutTests(ITestOutputHelper output)
{
    /// <summary>The hook timeout in these tests: a value no other timer of the proxy uses, so that awaiting a timer
    /// armed with it means the hook's deadline is armed.</summary>
    private static readonly TimeSpan HookTimeout = TimeSpan.FromSeconds(42);

    [Fact]
    public async Task A_request_hook_that_ignores_its_token_fails_its_exchange_with_a_502_naming_it_and_other_connections_go_on()
    {
        var clock = new ManualClock();
        var logs = new LogCollector();
        var hang = new HangingAddon { OnPath = "/hang", Hook = nameof(ProxyAddon.RequestAsync) };
        var done = new TaskCompletionSource<HttpExchange>(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = new Hooks { DisplayName = "Finished", OnDone = e => _ = e.Request.Path == "/hang" && done.TrySetResult(e) };
        await using var origin = RawOrigin.Recording();
        await using var proxy = await StartAsync(clock, logs, hang, finished);
        var timeouts = new ConcurrentQueue<string>();
        using var listener = MeterTags.Collect(proxy.Server.Metrics!.Meter, "interpose.addon.timeouts", "hook", timeouts);

        string answer;
        await using (var hung = await RawClient.ConnectAsync(proxy))
        using (hang.ReleaseAtEnd())
        {
            await SendGetAsync(hung, origin, "/hang");
            await hang.Entered.Task.WaitAsync(BoundedRead.Limit);
            await clock.ArmedAsync(HookTimeout).WaitAsync(BoundedRead.Limit);

            // While the hook hangs, another client is served: the hang holds its own exchange only.
            await using (var other = await RawClient.ConnectAsync(proxy))
            {
                await SendGetAsync(other, origin, "/fine", close: true);
                Assert.StartsWith("HTTP/1.1 200 ", Encoding.Latin1.GetString(await RawClient.ReadToEndAsync(other)), StringComparison.Ordinal);
            }

            // The hook ignores its token and returns only when this block ends: an answer read here (a bounded read)
            // did not wait for it.
            clock.Advance(HookTimeout);
            answer = (await RawClient.ReadUntilClosedAsync(hung)).Text;
        }

        Assert.StartsWith("HTTP/1.1 502 ", answer, StringComparison.Ordinal);
        Assert.Contains("addon Hanging failed in RequestAsync: did not complete within 42 s", answer, StringComparison.Ordinal);
        Assert.True(hang.Token.IsCancellationRequested, "the hook's token is cancelled at the deadline");
        Assert.Equal(ExchangePhase.Addon, (await done.Task.WaitAsync(BoundedRead.Limit)).Error?.Phase);
        var logged = (await logs.WaitForAsync(132)).Message;
        Assert.Contains("Hanging", logged, StringComparison.Ordinal);
        Assert.Contains("RequestAsync", logged, StringComparison.Ordinal);
        Assert.Equal(["RequestAsync"], timeouts);
        Assert.DoesNotContain("/hang", origin.ReceivedText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hook_that_honours_its_token_ends_at_the_deadline_with_the_same_502()
    {
        var clock = new ManualClock();
        await using var origin = RawOrigin.Recording();
        var hang = new HangingAddon { OnPath = "/slow", Hook = nameof(ProxyAddon.ResponseAsync), HonourToken = true };
        await using var proxy = await StartAsync(clock, new LogCollector(), hang);

        await using var client = await RawClient.ConnectAsync(proxy);
        using var release = hang.ReleaseAtEnd();
        await SendGetAsync(client, origin, "/slow");
        await hang.Entered.Task.WaitAsync(BoundedRead.Limit);
        await clock.ArmedAsync(HookTimeout).WaitAsync(BoundedRead.Limit);
        clock.Advance(HookTimeout);
        var answer = (await RawClient.ReadUntilClosedAsync(client)).Text;

        Assert.StartsWith("HTTP/1.1 502 ", answer, StringComparison.Ordinal);
        Assert.Contains("addon Hanging failed in ResponseAsync: did not complete within 42 s", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_done_hook_that_hangs_holds_its_connection_only_until_the_deadline()
    {
        var clock = new ManualClock();
        var logs = new LogCollector();
        var hang = new HangingAddon { OnPath = "/first", Hook = nameof(ProxyAddon.DoneAsync) };
        await using var origin = RawOrigin.Recording();
        await using var proxy = await StartAsync(clock, logs, hang);

        await using var client = await RawClient.ConnectAsync(proxy);
        using var release = hang.ReleaseAtEnd();
        await SendGetAsync(client, origin, "/first");
        var first = await RawOrigin.ReadHeadAsync(client) + await RawClient.ReadAsciiAsync(client, 2);
        await hang.Entered.Task.WaitAsync(BoundedRead.Limit);
        await clock.ArmedAsync(HookTimeout).WaitAsync(BoundedRead.Limit);
        await SendGetAsync(client, origin, "/second", close: true);
        clock.Advance(HookTimeout);
        var second = Encoding.Latin1.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 200 ", first, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 ", second, StringComparison.Ordinal);
        var logged = (await logs.WaitForAsync(133)).Message;
        Assert.Contains("Hanging", logged, StringComparison.Ordinal);
        Assert.Contains("DoneAsync", logged, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientHello_hooks_still_running_at_the_handshake_deadline_are_logged_as_such()
    {
        // The TLS handshake's deadline (here 17 s, a value no other timer uses) bounds the ClientHello hooks too.
        var clock = new ManualClock();
        var logs = new LogCollector();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = new SlowClientHello(entered);
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.TimeProvider = clock;
            o.Timeouts.TlsHandshake = TimeSpan.FromSeconds(17);
            o.Addons.Add(slow);
        }, logs: logs);

        var handshake = RawClient.TunnelAsync(proxy, "localhost", origin.Port, tls: true);
        await entered.Task.WaitAsync(BoundedRead.Limit);
        await clock.ArmedAsync(TimeSpan.FromSeconds(17)).WaitAsync(BoundedRead.Limit);
        clock.Advance(TimeSpan.FromSeconds(17));

        await Assert.ThrowsAnyAsync<Exception>(() => handshake.WaitAsync(BoundedRead.Limit));
        var entry = await logs.WaitForAsync(136).WaitAsync(BoundedRead.Limit);
        Assert.Contains("localhost", entry.Message, StringComparison.Ordinal);
        Assert.Contains("17 s", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hook_that_completes_synchronously_arms_no_deadline()
    {
        var clock = new ManualClock();
        var seen = 0;
        var counting = new Hooks { OnRequest = _ => Interlocked.Increment(ref seen), OnResponse = _ => Interlocked.Increment(ref seen) };
        await using var origin = RawOrigin.Recording();
        await using var proxy = await StartAsync(clock, new LogCollector(), counting);

        await using var client = await RawClient.ConnectAsync(proxy);
        await SendGetAsync(client, origin, "/sync", close: true);
        var answer = Encoding.Latin1.GetString(await RawClient.ReadToEndAsync(client));

        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.Equal(2, Volatile.Read(ref seen));
        Assert.False(clock.ArmedAsync(HookTimeout).IsCompleted, "no hook deadline was armed for hooks that completed synchronously");
    }

    [Fact]
    public async Task Running_hooks_that_complete_synchronously_allocates_nothing()
    {
        var runner = new AddonRunner([new Hooks(), new Hooks()], deadlines: null);
        using var scope = new TimeoutScope(TimeProvider.System);
        for (var i = 0; i < 100; i++)
        {
            await runner.RunAsync("RequestAsync", 0, static (a, _, c) => a.RequestAsync(null!, c), CancellationToken.None, scope);
        }

        // Every await below completes synchronously, so the whole loop runs on this thread.
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            await runner.RunAsync("RequestAsync", i, static (a, _, c) => a.RequestAsync(null!, c), CancellationToken.None, scope);
        }

        // Per call, nothing: any object is at least 24 bytes, so an allocation per call would be 24,000 bytes or more.
        // A one-off of a few dozen bytes (the runtime's, e.g. on a tier-up) was seen once in the full suite.
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1000, $"{allocated} bytes allocated by 1,000 hook runs");
    }

    private Task<TestProxy> StartAsync(ManualClock clock, LogCollector logs, params ProxyAddon[] addons) =>
        TestProxy.StartAsync(output, o =>
        {
            o.TimeProvider = clock;
            o.Timeouts.AddonHook = HookTimeout;
            foreach (var addon in addons)
            {
                o.Addons.Add(addon);
            }
        }, logs: logs);

    private static async Task SendGetAsync(Stream client, RawOrigin origin, string path, bool close = false)
    {
        var connection = close ? "Connection: close\r\n" : "";
        await client.WriteAsync(Encoding.ASCII.GetBytes($"GET http://127.0.0.1:{origin.Port}{path} HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\n{connection}\r\n"));
    }

    /// <summary>A ClientHello hook that waits for its token, as a hook looking something up remotely would.</summary>
    private sealed class SlowClientHello(TaskCompletionSource entered) : ProxyAddon
    {
        public override string Name => "SlowClientHello";

        public override async ValueTask TlsClientHelloAsync(TlsClientHelloContext context, CancellationToken cancellationToken)
        {
            entered.TrySetResult();
            await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
        }
    }

    /// <summary>An addon whose <see cref="Hook"/> never completes for <see cref="OnPath"/> (unless the test releases it).</summary>
    private sealed class HangingAddon : ProxyAddon
    {
        public required string OnPath { get; init; }

        public required string Hook { get; init; }

        /// <summary>Whether the hook ends when its token is cancelled (a well-written hook) or ignores it.</summary>
        public bool HonourToken { get; init; }

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>What the hook waits for: completed only when the test ends (<see cref="ReleaseAtEnd"/>).</summary>
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>
        /// Lets the hook return when disposed, before the proxy is: should the bound not work, the test fails on its
        /// bounded reads instead of hanging the proxy's shutdown (whose deadline is on the manual clock).
        /// </summary>
        public IDisposable ReleaseAtEnd() => new Releaser(Release);

        private sealed class Releaser(TaskCompletionSource release) : IDisposable
        {
            public void Dispose() => release.TrySetResult();
        }

        public CancellationToken Token { get; private set; }

        public override string Name => "Hanging";

        public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken) =>
            HangIf(nameof(RequestAsync), exchange, cancellationToken);

        public override ValueTask ResponseAsync(HttpExchange exchange, CancellationToken cancellationToken) =>
            HangIf(nameof(ResponseAsync), exchange, cancellationToken);

        public override ValueTask DoneAsync(HttpExchange exchange, CancellationToken cancellationToken) =>
            HangIf(nameof(DoneAsync), exchange, cancellationToken);

        private ValueTask HangIf(string hook, HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (hook != Hook || exchange.Request.Path != OnPath)
            {
                return default;
            }

            Token = cancellationToken;
            Entered.TrySetResult();
            return new ValueTask(HonourToken ? Release.Task.WaitAsync(cancellationToken) : Release.Task);
        }
    }
}
