using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Proxy.Tests.Infrastructure;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The curl export (<c>flows export --format curl</c>, "copy as curl") run by bash and the real curl against a raw
/// origin: the origin gets exactly the recorded request, and nothing curl would read as a file name or a glob changes it.
/// </summary>
public sealed class CurlScriptTests
{
    [Theory]
    [InlineData("plain")]
    [InlineData("line one\nline 'two'\r\n\ttabbed $HOME `id`")]
    [InlineData("@SECRET")]
    public async Task A_printable_body_is_sent_byte_for_byte_and_never_read_as_a_file(string template)
    {
        // curl reads a --data-binary value that starts with @ as a file to upload: a recorded body "@/home/u/.ssh/id_rsa"
        // would send that file instead of itself.
        var secret = Path.Combine(Path.GetTempPath(), $"curl-secret-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(secret, "the secret file's content");
        try
        {
            var body = Encoding.UTF8.GetBytes(template.Replace("SECRET", secret, StringComparison.Ordinal));
            await using var origin = new RecordingOrigin();

            var result = await RunAsync(Flow(origin.Port, "/up", body));

            Assert.True(result.ExitCode == 0, result.StandardError);
            var received = Assert.Single(origin.Requests);
            Assert.StartsWith("POST /up HTTP/1.1\r\n", received.Head, StringComparison.Ordinal);
            Assert.Equal(body, received.Body);
        }
        finally
        {
            File.Delete(secret);
        }
    }

    [Fact]
    public async Task A_binary_body_is_sent_byte_for_byte()
    {
        byte[] body = [0, 1, (byte)'@', (byte)'%', (byte)'\'', (byte)'\\', 0x7f, 0x80, 0xff];
        await using var origin = new RecordingOrigin();

        var result = await RunAsync(Flow(origin.Port, "/bin", body));

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal(body, Assert.Single(origin.Requests).Body);
    }

    [Theory]
    [InlineData("/items?id=[1-3]")]
    [InlineData("/{a,b}/x?q=[ab]")]
    public async Task Brackets_and_braces_in_the_url_send_one_request_with_the_recorded_target(string target)
    {
        // Without --globoff curl expands [1-3] to three requests and {a,b} to two.
        await using var origin = new RecordingOrigin();

        var result = await RunAsync(Flow(origin.Port, target, []));

        Assert.True(result.ExitCode == 0, result.StandardError);
        var received = Assert.Single(origin.Requests);
        Assert.StartsWith($"GET {target} HTTP/1.1\r\n", received.Head, StringComparison.Ordinal);
    }

    [Fact]
    public void A_body_that_ended_early_is_marked_as_incomplete_like_a_cut_one()
    {
        // All the bytes that passed were kept (so not IsTruncated), but the exchange failed mid-body: not the whole body.
        var flow = Flow(9, "/up", "abc"u8.ToArray());
        flow = flow with { Request = flow.Request with { Body = new FlowBody("abc"u8.ToArray(), 3, null) } };

        Assert.EndsWith(" # body incomplete: the exchange failed after 3 bytes", CurlScript.Command(flow), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_header_name_that_starts_with_at_is_left_out_and_never_read_as_a_file_of_headers()
    {
        // curl reads a -H value that starts with @ as a file of header lines to send. A name cannot start with @ (it is
        // no RFC 9110 token), but a flow read from JSON (an old store's rows, a JSON Lines file) is not checked: the
        // name "@/dir/f" and the value "x" made the argument "@/dir/f: x", so curl sent the lines of the file "/dir/f: x".
        var secret = Path.Combine(Path.GetTempPath(), $"curl-headers-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(secret + ": x", "X-Leaked: the secret file's content\n");
        try
        {
            await using var origin = new RecordingOrigin();
            var output = new ArrayBufferWriter<byte>();
            FlowJson.WriteLine(output, Flow(origin.Port, "/h", []));
            var json = Encoding.UTF8.GetString(output.WrittenSpan)
                .Replace("[\"Content-Type\",\"application/octet-stream\"]", $"[\"@{secret}\",\"x\"]", StringComparison.Ordinal);
            var flow = (HttpFlow)FlowJson.Read(Encoding.UTF8.GetBytes(json));
            Assert.Equal("@" + secret, flow.Request.Headers[1].Name);

            var result = await RunAsync(flow);

            Assert.True(result.ExitCode == 0, result.StandardError);
            var received = Assert.Single(origin.Requests);
            Assert.DoesNotContain("X-Leaked", received.Head, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(secret, received.Head, StringComparison.Ordinal);
            Assert.EndsWith(" # 1 header field(s) left out: their names are not RFC 9110 tokens", CurlScript.Command(flow), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(secret + ": x");
        }
    }

    [Fact]
    public async Task A_header_value_with_a_line_break_is_left_out_and_never_sends_lines_of_its_own()
    {
        // A field value never holds CR or LF (RFC 9110 §5.5), but a flow read from JSON is not checked: the value
        // "a\r\nX-Injected: yes" went into the -H argument as it was, a line break inside the command.
        await using var origin = new RecordingOrigin();
        var output = new ArrayBufferWriter<byte>();
        FlowJson.WriteLine(output, Flow(origin.Port, "/h", []));
        var json = Encoding.UTF8.GetString(output.WrittenSpan)
            .Replace("[\"Content-Type\",\"application/octet-stream\"]", "[\"X-Note\",\"a\\r\\nX-Injected: yes\"]", StringComparison.Ordinal);
        var flow = (HttpFlow)FlowJson.Read(Encoding.UTF8.GetBytes(json));
        Assert.Equal("a\r\nX-Injected: yes", flow.Request.Headers[1].Value);

        var result = await RunAsync(flow);

        Assert.True(result.ExitCode == 0, result.StandardError);
        var received = Assert.Single(origin.Requests);
        Assert.DoesNotContain("X-Injected", received.Head, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("X-Note", received.Head, StringComparison.OrdinalIgnoreCase);
        var command = CurlScript.Command(flow);
        Assert.DoesNotContain("\n", command, StringComparison.Ordinal);
        Assert.DoesNotContain("\r", command, StringComparison.Ordinal);
        Assert.EndsWith(" # 1 header field(s) left out: their values hold CR, LF or NUL (RFC 9110 §5.5)", command, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_streamed_script_is_the_one_the_export_always_wrote()
    {
        // The script as the export wrote it when it built it whole: a printable body with a quote, a binary body longer
        // than the pieces a body is written in, a cut body.
        byte[] large = [.. Enumerable.Range(0, 10_000).Select(i => (byte)(i * 7))];
        var printable = Flow(8080, "/p?a='1'", "it's"u8.ToArray());
        var binary = Flow(8080, "/b", large);
        var cut = Flow(8080, "/c", "abc"u8.ToArray());
        cut = cut with { Request = cut.Request with { Body = new FlowBody("abc"u8.ToArray(), 10, null) } };
        const string Head = " -X 'POST' -H 'Host: 127.0.0.1:8080' -H 'Content-Type: application/octet-stream'";
        var expected = "#!/bin/bash\n"
            + "curl --globoff 'http://127.0.0.1:8080/p?a='\\''1'\\'''" + Head + " --data-raw 'it'\\''s'\n"
            + "curl --globoff 'http://127.0.0.1:8080/b'" + Head + " --data-binary @<(printf '"
            + string.Concat(large.Select(b => "\\x" + b.ToString("x2", CultureInfo.InvariantCulture))) + "')\n"
            + "curl --globoff 'http://127.0.0.1:8080/c'" + Head + " --data-raw 'abc' # body truncated: 3 of 10 bytes recorded\n";

        var writer = new StringWriter(CultureInfo.InvariantCulture);
        Assert.Equal(3, await CurlScript.WriteScriptAsync(new[] { printable, binary, cut }.ToAsyncEnumerable(), writer));

        Assert.Equal(expected, writer.ToString());
        Assert.Equal(expected, CurlScript.Script([printable, binary, cut]));
    }

    [Fact]
    public async Task Each_command_is_written_before_the_next_flow_is_read()
    {
        // The export once read every flow of the store, bodies and all, before it wrote a byte.
        var first = Flow(8080, "/first", []);
        var writer = new StringWriter(CultureInfo.InvariantCulture);
        string? writtenBeforeSecond = null;

        async IAsyncEnumerable<HttpFlow> Flows()
        {
            await Task.Yield();
            yield return first;
            writtenBeforeSecond = writer.ToString();
            yield return Flow(8080, "/second", []);
        }

        Assert.Equal(2, await CurlScript.WriteScriptAsync(Flows(), writer));
        Assert.Equal("#!/bin/bash\n" + CurlScript.Command(first) + "\n", writtenBeforeSecond);
    }

    private static HttpFlow Flow(int port, string path, byte[] body)
    {
        var headers = new HttpHeaders();
        headers.Add("Host", $"127.0.0.1:{port}");
        headers.Add("Content-Type", "application/octet-stream");
        return new HttpFlow
        {
            Id = Guid.NewGuid(),
            StartedAt = DateTimeOffset.UnixEpoch,
            ClientHttpVersion = "HTTP/1.1",
            Request = new FlowRequest
            {
                Method = body.Length == 0 ? "GET" : "POST",
                Scheme = "http",
                Host = "127.0.0.1",
                Port = port,
                Path = path,
                HttpVersion = "HTTP/1.1",
                Headers = headers,
                Body = FlowBody.FromBytes(body),
            },
        };
    }

    private static async Task<ProcessResult> RunAsync(HttpFlow flow)
    {
        var script = Path.Combine(Path.GetTempPath(), $"curl-script-{Guid.NewGuid():N}.sh");
        await using (var writer = new StreamWriter(script, append: false, new UTF8Encoding(false)))
        {
            Assert.Equal(1, await CurlScript.WriteScriptAsync(new[] { flow }.ToAsyncEnumerable(), writer));
        }

        try
        {
            return await ProcessResult.RunAsync("bash", [script]);
        }
        finally
        {
            File.Delete(script);
        }
    }

    /// <summary>An origin that reads each request (a Content-Length body or none), keeps it, and answers 200 with no body.</summary>
    private sealed class RecordingOrigin : IAsyncDisposable
    {
        private readonly RawOrigin _origin;

        public RecordingOrigin() => _origin = new RawOrigin(async stream =>
        {
            while (true)
            {
                string head;
                try
                {
                    head = await RawOrigin.ReadHeadAsync(stream);
                }
                catch (EndOfStreamException)
                {
                    return;
                }

                var length = 0;
                foreach (var line in head.Split("\r\n"))
                {
                    if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                    {
                        length = int.Parse(line["Content-Length:".Length..].Trim(), CultureInfo.InvariantCulture);
                    }
                }

                var body = new byte[length];
                await stream.ReadExactlyBoundedAsync(body);
                Requests.Enqueue((head, body));
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
            }
        });

        public int Port => _origin.Port;

        public ConcurrentQueue<(string Head, byte[] Body)> Requests { get; } = new();

        public ValueTask DisposeAsync() => _origin.DisposeAsync();
    }
}
