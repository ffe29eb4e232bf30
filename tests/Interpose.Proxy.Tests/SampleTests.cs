using System.Text;
using System.Text.Json;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The programs under <c>samples/</c>, built with the solution and run as real processes (port 0, a temporary CA
/// home), driven by curl: a sample that stops working fails the build of trust in the docs that point to it.
/// </summary>
public sealed class SampleTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("interpose-sample-").FullName;

    private string CaPemPath => Path.Combine(_home, "interpose-ca.pem");

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public async Task AddHeader_sample_adds_its_header_to_every_request_and_exits_0_on_sigterm()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var sample = await InterposeProcess.StartSampleAsync("AddHeader", _home, ["0", "--home", _home]);

        var headers = await Curl(sample, origin.Url("/headers").ToString());
        var exit = await sample.TerminateAsync();

        Assert.True(headers.ExitCode == 0, headers.StandardError);
        Assert.Contains("X-Interpose: sample\n", headers.StandardOutput, StringComparison.Ordinal);
        Assert.True(File.Exists(CaPemPath), "the CA is created in the --home directory");
        Assert.Equal(0, exit);
    }

    [Fact]
    public async Task MockEndpoint_sample_answers_status_itself_and_passes_everything_else_through()
    {
        await using var origin = new RawOrigin(async stream =>
        {
            await RawOrigin.ReadHeadAsync(stream);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nfrom origin"u8.ToArray());
        });
        await using var sample = await InterposeProcess.StartSampleAsync("MockEndpoint", _home, ["0", "--home", _home]);

        var mocked = await Curl(sample, "--include", $"http://localhost:{origin.Port}/api/status?verbose=1");
        var connectionsAfterMock = origin.AcceptedConnections;
        var passed = await Curl(sample, $"http://localhost:{origin.Port}/api/other");
        var exit = await sample.TerminateAsync();

        Assert.True(mocked.ExitCode == 0, mocked.StandardError);
        Assert.Contains("X-Interpose-Mock: status\r\n", mocked.StandardOutput, StringComparison.Ordinal);
        Assert.EndsWith("""{"status":"ok","mocked":true,"host":"localhost"}""", mocked.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(0, connectionsAfterMock);
        Assert.True(passed.ExitCode == 0, passed.StandardError);
        Assert.Equal("from origin", passed.StandardOutput);
        Assert.Equal(1, origin.AcceptedConnections);
        Assert.Equal(0, exit);
    }

    [Fact]
    public async Task MockEndpoint_sample_answers_status_over_intercepted_https_without_contacting_the_origin()
    {
        // Nothing here speaks TLS: if the proxy contacted the origin, the exchange would fail.
        await using var origin = new RawOrigin(RawOrigin.WaitForCloseAsync);
        await using var sample = await InterposeProcess.StartSampleAsync("MockEndpoint", _home, ["0", "--home", _home]);

        var mocked = await Curl(sample, "--cacert", CaPemPath, $"https://localhost:{origin.Port}/api/status");
        var exit = await sample.TerminateAsync();

        Assert.True(mocked.ExitCode == 0, mocked.StandardError);
        Assert.Equal("""{"status":"ok","mocked":true,"host":"localhost"}""", mocked.StandardOutput);
        Assert.Equal(0, origin.AcceptedConnections);
        Assert.Equal(0, exit);
    }

    [Fact]
    public async Task LogJsonBodies_sample_writes_one_json_line_per_exchange_of_its_host_only()
    {
        await using var origin = await KestrelOrigin.StartAsync(app =>
        {
            Origins.MapBasics(app);
            app.MapPost("/api/items", async (HttpContext context) =>
            {
                using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
                var body = await reader.ReadToEndAsync();
                context.Response.ContentType = "application/json";

                // No Content-Length: Kestrel sends it chunked, so the logger buffers a chunked body.
                await context.Response.WriteAsync("{\"id\":7,\"echo\":" + body + "}");
            });
        });

        // The CA home through INTERPOSE_HOME this time, the other way ProxyOptions.ConfigDirectory = null resolves it.
        await using var sample = await InterposeProcess.StartSampleAsync("LogJsonBodies", _home, ["localhost", "0"], new Dictionary<string, string> { ["INTERPOSE_HOME"] = _home });

        var post = await Curl(sample, "-H", "Content-Type: application/json", "--data", """{"name":"interpose"}""", origin.Url("/api/items").ToString());
        var text = await Curl(sample, origin.Url("/hello").ToString());
        var otherHost = await Curl(sample, "-H", "Content-Type: application/json", "--data", """{"name":"not logged"}""", $"http://127.0.0.1:{origin.Port}/api/items");
        var exit = await sample.TerminateAsync();

        Assert.True(post.ExitCode == 0, post.StandardError);
        Assert.Equal("""{"id":7,"echo":{"name":"interpose"}}""", post.StandardOutput);
        Assert.True(text.ExitCode == 0, text.StandardError);
        Assert.True(otherHost.ExitCode == 0, otherHost.StandardError);
        Assert.Equal(0, exit);
        Assert.True(File.Exists(CaPemPath), "the CA is created in $INTERPOSE_HOME");

        // Exchanges finish concurrently with the next request, so lines are matched by URL, not by position.
        var lines = sample.StandardOutput.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, lines.Count);
        var logged = lines.Single(l => l.GetProperty("url").GetString() == origin.Url("/api/items").ToString());
        Assert.Equal("POST", logged.GetProperty("method").GetString());
        Assert.Equal(200, logged.GetProperty("status").GetInt32());
        Assert.Equal("interpose", logged.GetProperty("requestBody").GetProperty("name").GetString());
        Assert.Equal(7, logged.GetProperty("responseBody").GetProperty("id").GetInt32());
        Assert.Equal("interpose", logged.GetProperty("responseBody").GetProperty("echo").GetProperty("name").GetString());
        var hello = lines.Single(l => l.GetProperty("url").GetString() == origin.Url("/hello").ToString());
        Assert.Equal(200, hello.GetProperty("status").GetInt32());
        Assert.Equal(JsonValueKind.Null, hello.GetProperty("requestBody").ValueKind);
        Assert.Equal(JsonValueKind.Null, hello.GetProperty("responseBody").ValueKind);
    }

    private static Task<ProcessResult> Curl(InterposeProcess sample, params string[] args) =>
        ProcessResult.RunAsync("curl", ["--silent", "--show-error", "--fail", "--proxy", sample.Url.ToString(), "--noproxy", "", .. args]);
}
