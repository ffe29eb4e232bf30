using System.Buffers;
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
    private HttpHeaders _request = null!;
    private HttpHeaders _response = null!;

    [GlobalSetup]
    public void Setup()
    {
        // Http1ParserBenchmarks' heads (a Connection field in the request), with what an old client and a chunked
        // origin add: Proxy-Connection, and a Connection field and Transfer-Encoding in the response.
        Http1Parser.TryParseRequestHead(new ReadOnlySequence<byte>(Http1ParserBenchmarks.Request), Http1Limits.Default, out HttpRequestHead? request, out _);
        Http1Parser.TryParseResponseHead(new ReadOnlySequence<byte>(Http1ParserBenchmarks.Response), Http1Limits.Default, out HttpResponseHead? response, out _);
        _request = request!.Headers;
        _request.Add("Proxy-Connection", "keep-alive");
        _response = response!.Headers;
        _response.Remove("Content-Length");
        _response.Add("Transfer-Encoding", "chunked");
        _response.Add("Connection", "keep-alive");
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
