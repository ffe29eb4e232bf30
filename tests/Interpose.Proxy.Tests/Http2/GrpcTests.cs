using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Interpose.Proxy.Tests.Http2.Grpc;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Http2;

/// <summary>
/// gRPC end to end through the proxy, intercepted: the real grpc-dotnet client (trusting only the Interpose CA) and a
/// real Grpc.AspNetCore server on an HTTPS Kestrel origin. gRPC needs HTTP/2 on both sides, trailers and
/// bidirectional streaming: it passes only if the proxy speaks h2 to the origin.
/// </summary>
public sealed class GrpcTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Unary_with_metadata_both_ways_and_trailers()
    {
        await using var origin = await StartOriginAsync();
        // The client can have the whole answer before the exchange's Done hook ran: awaited, not read at once.
        var versions = new TaskCompletionSource<(Version Client, Version? Server)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var logs = new LogCollector();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.Addons.Add(new Hooks { OnDone = e => versions.TrySetResult((e.ClientVersion, e.ServerVersion)) });
        }, logs: logs);
        using var channel = CreateChannel(proxy, origin);
        var client = new Echo.EchoClient(channel);

        using var call = client.UnaryAsync(new EchoRequest { Text = "hi" }, new Metadata { { "x-client-meta", "from-client" } });
        var reply = await call.ResponseAsync;
        var headers = await call.ResponseHeadersAsync;
        var trailers = call.GetTrailers();

        Assert.Equal("echo: hi (meta from-client)", reply.Text);
        Assert.Equal("from-server", headers.GetValue("x-server-meta"));
        Assert.Equal("trailer-value", trailers.GetValue("x-server-trailer"));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);

        // The flow log's "h2 -> h2": both sides' versions are on the exchange.
        Assert.Equal((HttpVersion.Version20, (Version?)HttpVersion.Version20), await versions.Task.WaitAsync(BoundedRead.Limit));
        Assert.EndsWith("ms [h2 -> h2]", (await logs.WaitForAsync(1).WaitAsync(BoundedRead.Limit)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_and_details_arrive_in_trailers()
    {
        await using var origin = await StartOriginAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);
        using var channel = CreateChannel(proxy, origin);
        var client = new Echo.EchoClient(channel);

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoRequest { Text = "fail" }));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal("the origin said no", ex.Status.Detail);
        Assert.Equal("why", ex.Trailers.GetValue("x-failure"));
    }

    [Fact]
    public async Task Server_streaming()
    {
        await using var origin = await StartOriginAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);
        using var channel = CreateChannel(proxy, origin);
        var client = new Echo.EchoClient(channel);

        using var call = client.ServerStream(new EchoRequest { Text = "n", Count = 50 });
        var replies = new List<string>();
        await foreach (var reply in call.ResponseStream.ReadAllAsync())
        {
            replies.Add(reply.Text);
        }

        Assert.Equal(Enumerable.Range(0, 50).Select(i => "n " + i), replies);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Client_streaming()
    {
        await using var origin = await StartOriginAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);
        using var channel = CreateChannel(proxy, origin);
        var client = new Echo.EchoClient(channel);

        using var call = client.ClientStream();
        for (var i = 0; i < 20; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = i.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }

        await call.RequestStream.CompleteAsync();
        var reply = await call;

        Assert.Equal(string.Join(",", Enumerable.Range(0, 20)), reply.Text);
    }

    [Fact]
    public async Task Bidirectional_streaming_answers_each_message_before_the_next_is_sent()
    {
        await using var origin = await StartOriginAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);
        using var channel = CreateChannel(proxy, origin);
        var client = new Echo.EchoClient(channel);

        using var call = client.Bidi();
        for (var i = 0; i < 10; i++)
        {
            // Ping-pong: the next message goes only once its answer came back, so nothing may be held back by the
            // proxy (no buffering, no coalescing of DATA frames in either direction).
            await call.RequestStream.WriteAsync(new EchoRequest { Text = "m" + i });
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal("bidi m" + i, call.ResponseStream.Current.Text);
        }

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task An_h2_only_origin_is_reached_by_an_h2_client()
    {
        await using var origin = await StartOriginAsync(HttpProtocols.Http2);
        await using var proxy = await TestProxy.StartAsync(output, o => o.Http2 = true);
        using var channel = CreateChannel(proxy, origin);
        var client = new Echo.EchoClient(channel);

        var reply = await client.UnaryAsync(new EchoRequest { Text = "only h2" });

        Assert.Equal("echo: only h2 (meta none)", reply.Text);
    }

    [Fact]
    public async Task With_upstream_h2_off_grpc_cannot_pass()
    {
        // The control for the tests above: over an HTTP/1.1 origin connection there are no trailers to carry the
        // status, so the call fails; it is the HTTP/2 upstream that makes gRPC work.
        await using var origin = await StartOriginAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Http2 = true;
            o.UpstreamHttp2 = false;
        });
        using var channel = CreateChannel(proxy, origin);
        var client = new Echo.EchoClient(channel);

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoRequest { Text = "hi" }));
        Assert.NotEqual(StatusCode.OK, ex.StatusCode);
    }

    private static GrpcChannel CreateChannel(TestProxy proxy, KestrelOrigin origin) =>
        GrpcChannel.ForAddress(origin.Url(), new GrpcChannelOptions { HttpClient = proxy.CreateClient(), DisposeHttpClient = true });

    private static Task<KestrelOrigin> StartOriginAsync(HttpProtocols? protocols = null) => KestrelOrigin.StartAsync(
        app => app.MapGrpcService<EchoService>(),
        TestPki.Issue(TestPki.OriginRoot, "localhost"),
        builder => builder.Services.AddGrpc(),
        protocols);

    private sealed class EchoService : Echo.EchoBase
    {
        public override async Task<EchoReply> Unary(EchoRequest request, ServerCallContext context)
        {
            if (request.Text == "fail")
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, "the origin said no"), new Metadata { { "x-failure", "why" } });
            }

            await context.WriteResponseHeadersAsync(new Metadata { { "x-server-meta", "from-server" } });
            context.ResponseTrailers.Add("x-server-trailer", "trailer-value");
            var meta = context.RequestHeaders.GetValue("x-client-meta") ?? "none";
            return new EchoReply { Text = $"echo: {request.Text} (meta {meta})" };
        }

        public override async Task ServerStream(EchoRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
        {
            for (var i = 0; i < request.Count; i++)
            {
                await responseStream.WriteAsync(new EchoReply { Text = $"{request.Text} {i}" });
            }
        }

        public override async Task<EchoReply> ClientStream(IAsyncStreamReader<EchoRequest> requestStream, ServerCallContext context)
        {
            var texts = new List<string>();
            await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
            {
                texts.Add(request.Text);
            }

            return new EchoReply { Text = string.Join(",", texts) };
        }

        public override async Task Bidi(IAsyncStreamReader<EchoRequest> requestStream, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
        {
            await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
            {
                await responseStream.WriteAsync(new EchoReply { Text = "bidi " + request.Text });
            }
        }
    }
}
