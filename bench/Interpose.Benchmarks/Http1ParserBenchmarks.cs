using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Interpose.Core.Http;

namespace Interpose.Benchmarks;

/// <summary>HTTP/1.1 head parsing and writing: a typical browser request (~10 headers) and a typical response.</summary>
[MemoryDiagnoser]
public class Http1ParserBenchmarks
{
    /// <summary>A typical browser request head (shared with <see cref="HopByHopBenchmarks"/>).</summary>
    internal static readonly byte[] Request = Encoding.ASCII.GetBytes(
        "GET /search?q=interpose&lang=en HTTP/1.1\r\n" +
        "Host: www.example.test\r\n" +
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0\r\n" +
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
        "Accept-Language: en-US,en;q=0.5\r\n" +
        "Accept-Encoding: gzip, deflate, br, zstd\r\n" +
        "Connection: keep-alive\r\n" +
        "Cookie: session=4f1c2a9e0b; theme=dark\r\n" +
        "Upgrade-Insecure-Requests: 1\r\n" +
        "Sec-Fetch-Dest: document\r\n" +
        "Sec-Fetch-Mode: navigate\r\n" +
        "Priority: u=0, i\r\n\r\n");

    /// <summary>A typical origin response head (shared with <see cref="HopByHopBenchmarks"/>).</summary>
    internal static readonly byte[] Response = Encoding.ASCII.GetBytes(
        "HTTP/1.1 200 OK\r\n" +
        "Date: Tue, 24 Nov 2026 02:00:00 GMT\r\n" +
        "Server: origin\r\n" +
        "Content-Type: text/html; charset=utf-8\r\n" +
        "Content-Length: 12345\r\n" +
        "Cache-Control: private, max-age=0\r\n" +
        "Vary: Accept-Encoding\r\n" +
        "Content-Encoding: gzip\r\n" +
        "Strict-Transport-Security: max-age=31536000\r\n\r\n");

    private readonly ReadOnlySequence<byte> _request = new(Request);
    private readonly ReadOnlySequence<byte> _response = new(Response);
    private readonly ArrayBufferWriter<byte> _writer = new(4096);
    private HttpRequestHead _parsed = null!;
    private Http1HeadScan _requestConnection;
    private Http1HeadScan _responseConnection;

    [GlobalSetup]
    public void Setup()
    {
        Http1Parser.TryParseRequestHead(_request, Http1Limits.Default, out HttpRequestHead? head, out _);
        _parsed = head!;
    }

    [Benchmark]
    public HttpRequestHead? ParseRequestHead()
    {
        Http1Parser.TryParseRequestHead(_request, Http1Limits.Default, out HttpRequestHead? head, out _);
        return head;
    }

    [Benchmark]
    public HttpResponseHead? ParseResponseHead()
    {
        Http1Parser.TryParseResponseHead(_response, Http1Limits.Default, out HttpResponseHead? head, out _);
        return head;
    }

    /// <summary>The same head again on one connection's scan, as a keep-alive client sends it: its strings are shared.</summary>
    [Benchmark]
    public HttpRequestHead? ParseRequestHeadOnConnection()
    {
        Http1Parser.TryParseRequestHead(_request, Http1Limits.Default, ref _requestConnection, out HttpRequestHead? head, out _);
        return head;
    }

    /// <summary>The same response head again on one connection's scan.</summary>
    [Benchmark]
    public HttpResponseHead? ParseResponseHeadOnConnection()
    {
        Http1Parser.TryParseResponseHead(_response, Http1Limits.Default, ref _responseConnection, out HttpResponseHead? head, out _);
        return head;
    }

    [Benchmark]
    public int WriteRequestHead()
    {
        _writer.ResetWrittenCount();
        Http1Parser.WriteRequestHead(_parsed, _writer);
        return _writer.WrittenCount;
    }
}
