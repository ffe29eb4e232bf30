using System.Net;
using System.Net.Http;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary><c>interpose run --otlp ENDPOINT</c> through the real command, to a local OTLP/HTTP receiver (Kestrel).</summary>
public sealed class OtlpCommandTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _home = Directory.CreateTempSubdirectory("interpose-otlp-").FullName;

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        Directory.Delete(_home, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task The_exchanges_spans_reach_an_OTLP_HTTP_receiver_by_the_time_the_command_stops()
    {
        var received = new TaskCompletionSource<(string ContentType, byte[] Body)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var collector = await KestrelOrigin.StartAsync(app => app.MapPost("/v1/traces", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            received.TrySetResult((context.Request.ContentType ?? "", body.ToArray()));
            return Results.Ok();
        }));
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await InterposeProcess.StartAsync(_home, "--otlp", $"http://127.0.0.1:{collector.Port}");
        try
        {
            using var client = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy(proxy.Url), UseProxy = true });
            Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));

            // The batch is sent at the latest when the command stops.
            Assert.Equal(0, await proxy.TerminateAsync());
        }
        finally
        {
            foreach (var line in proxy.StandardError.Concat(proxy.StandardOutput))
            {
                output.WriteLine(line);
            }
        }

        var (contentType, payload) = await received.Task.WaitAsync(BoundedRead.Limit);
        Assert.Equal("application/x-protobuf", contentType);

        // Protobuf keeps strings as UTF-8 bytes: the source, the attribute names and the URL are there as text.
        var text = Encoding.UTF8.GetString(payload);
        Assert.Contains(ProxyServer.ActivitySourceName, text, StringComparison.Ordinal);
        Assert.Contains("url.full", text, StringComparison.Ordinal);
        Assert.Contains(origin.Url("/hello").ToString(), text, StringComparison.Ordinal);
        Assert.Contains("http.response.status_code", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_endpoint_that_is_not_an_http_URL_is_one_line_and_exit_2()
    {
        string[] args = ["--home", _home, "run", "--listen", "127.0.0.1:0", "--otlp", "collector:4318"];
        var result = InterposeProcess.NativeCliPath is { } native
            ? await ProcessResult.RunAsync(native, args)
            : await ProcessResult.RunAsync("dotnet", [InterposeProcess.CliPath, .. args]);

        Assert.Equal((2, "interpose: --otlp: 'collector:4318' is not an http or https URL (e.g. http://127.0.0.1:4318)"), (result.ExitCode, result.StandardError.Trim()));
    }
}
