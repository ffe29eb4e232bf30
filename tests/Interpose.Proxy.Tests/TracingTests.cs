using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The <c>Interpose</c> activity source: a server span per exchange and a child client span for the origin, with
/// OpenTelemetry's HTTP attributes, and nothing added to the forwarded request.
/// </summary>
public sealed class TracingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task An_exchange_is_a_server_span_with_a_client_child_span_and_no_traceparent_is_added()
    {
        await using var origin = RawOrigin.Recording("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        using var spans = new SpanCollector(origin.Port);
        await using var proxy = await TestProxy.StartAsync(output);

        var response = await SendAsync(proxy, $"GET http://127.0.0.1:{origin.Port}/a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 201", response, StringComparison.Ordinal);
        Assert.DoesNotContain("traceparent", origin.ReceivedText, StringComparison.OrdinalIgnoreCase);
        var server = await spans.WaitAsync(ActivityKind.Server);
        var client = await spans.WaitAsync(ActivityKind.Client);
        Assert.Equal("GET", server.DisplayName);
        Assert.Equal(server.SpanId, client.ParentSpanId);
        Assert.Equal(server.TraceId, client.TraceId);
        foreach (var span in new[] { server, client })
        {
            Assert.Equal("GET", span.GetTagItem("http.request.method"));
            Assert.Equal($"http://127.0.0.1:{origin.Port}/a?b=1", span.GetTagItem("url.full"));
            Assert.Equal("127.0.0.1", span.GetTagItem("server.address"));
            Assert.Equal(origin.Port, span.GetTagItem("server.port"));
            Assert.Equal(201, span.GetTagItem("http.response.status_code"));
            Assert.Equal("1.1", span.GetTagItem("network.protocol.version"));
            Assert.Null(span.GetTagItem("error.type"));
        }
    }

    [Fact]
    public async Task A_client_traceparent_parents_the_server_span_and_is_forwarded_unchanged()
    {
        await using var origin = RawOrigin.Recording();
        using var spans = new SpanCollector(origin.Port);
        await using var proxy = await TestProxy.StartAsync(output);
        const string TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

        await SendAsync(proxy, $"GET http://127.0.0.1:{origin.Port}/ HTTP/1.1\r\nHost: 127.0.0.1:{origin.Port}\r\ntraceparent: {TraceParent}\r\nConnection: close\r\n\r\n");

        var server = await spans.WaitAsync(ActivityKind.Server);
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", server.TraceId.ToHexString());
        Assert.Equal("b7ad6b7169203331", server.ParentSpanId.ToHexString());
        Assert.Contains($"\r\ntraceparent: {TraceParent}\r\n", origin.ReceivedText, StringComparison.Ordinal);
        Assert.Single(origin.ReceivedText.Split("traceparent", StringSplitOptions.None).Skip(1));
    }

    [Fact]
    public async Task A_failed_exchange_sets_error_type_on_both_spans()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        using var spans = new SpanCollector(port);
        await using var proxy = await TestProxy.StartAsync(output);

        Assert.StartsWith("HTTP/1.1 502", await SendAsync(proxy, $"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);

        var server = await spans.WaitAsync(ActivityKind.Server);
        var client = await spans.WaitAsync(ActivityKind.Client);
        Assert.Equal(("connect", ActivityStatusCode.Error), (server.GetTagItem("error.type"), server.Status));
        Assert.Equal(("connect", ActivityStatusCode.Error), (client.GetTagItem("error.type"), client.Status));
    }

    private static async Task<string> SendAsync(TestProxy proxy, string request)
    {
        await using var stream = await RawClient.ConnectAsync(proxy);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        return (await RawClient.ReadUntilClosedAsync(stream)).Text;
    }

    /// <summary>Listens to the Interpose source and keeps the stopped spans of one origin port (tests run in parallel).</summary>
    private sealed class SpanCollector : IDisposable
    {
        private readonly ActivityListener _listener;
        private readonly ConcurrentDictionary<ActivityKind, TaskCompletionSource<Activity>> _stopped = new();

        public SpanCollector(int port)
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == ProxyServer.ActivitySourceName,
                Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = activity =>
                {
                    if (activity.GetTagItem("server.port") is int p && p == port)
                    {
                        Completion(activity.Kind).TrySetResult(activity);
                    }
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public Task<Activity> WaitAsync(ActivityKind kind) => Completion(kind).Task.WaitAsync(BoundedRead.Limit);

        public void Dispose() => _listener.Dispose();

        private TaskCompletionSource<Activity> Completion(ActivityKind kind) =>
            _stopped.GetOrAdd(kind, static _ => new TaskCompletionSource<Activity>(TaskCreationOptions.RunContinuationsAsynchronously));
    }
}
