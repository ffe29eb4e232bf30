using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Interpose.Core.Http;

namespace Interpose.Benchmarks;

/// <summary>
/// Removing the hop-by-hop fields (RFC 9110 §7.6.1) from a typical browser request and a typical origin response,
/// as every forwarded message does. Each run works on a fresh copy of the parsed fields; <see cref="CopyOnly"/> is
/// that copy alone, to subtract.
/// </summary>
[MemoryDiagnoser]
public class HopByHopBenchmarks
{
    private static readonly byte[] Request = Encoding.ASCII.GetBytes(
        "GET /search?q=interpose&lang=en HTTP/1.1\r\n" +
        "Host: www.example.test\r\n" +
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0\r\n" +
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
        "Accept-Language: en-US,en;q=0.5\r\n" +
        "Accept-Encoding: gzip, deflate, br, zstd\r\n" +
        "Connection: keep-alive\r\n" +
        "Proxy-Connection: keep-alive\r\n" +
        "Cookie: session=4f1c2a9e0b; theme=dark\r\n" +
        "Upgrade-Insecure-Requests: 1\r\n" +
        "Sec-Fetch-Dest: document\r\n" +
        "Sec-Fetch-Mode: navigate\r\n" +
        "Priority: u=0, i\r\n\r\n");

    private static readonly byte[] Response = Encoding.ASCII.GetBytes(
        "HTTP/1.1 200 OK\r\n" +
        "Date: Tue, 24 Nov 2026 02:00:00 GMT\r\n" +
        "Server: origin\r\n" +
        "Content-Type: text/html; charset=utf-8\r\n" +
        "Transfer-Encoding: chunked\r\n" +
        "Connection: keep-alive\r\n" +
        "Cache-Control: private, max-age=0\r\n" +
        "Vary: Accept-Encoding\r\n" +
        "Content-Encoding: gzip\r\n" +
        "Strict-Transport-Security: max-age=31536000\r\n\r\n");

    private HttpHeaders _request = null!;
    private HttpHeaders _response = null!;

    [GlobalSetup]
    public void Setup()
    {
        Http1Parser.TryParseRequestHead(new ReadOnlySequence<byte>(Request), Http1Limits.Default, out HttpRequestHead? request, out _);
        Http1Parser.TryParseResponseHead(new ReadOnlySequence<byte>(Response), Http1Limits.Default, out HttpResponseHead? response, out _);
        _request = request!.Headers;
        _response = response!.Headers;
    }

    [Benchmark(Baseline = true)]
    public int CopyOnly() => _request.Clone().Count + _response.Clone().Count;

    [Benchmark]
    public int RequestAndResponse()
    {
        var request = _request.Clone();
        HopByHop.Remove(request);
        var response = _response.Clone();
        HopByHop.Remove(response, keepTransferEncoding: true);
        return request.Count + response.Count;
    }
}
