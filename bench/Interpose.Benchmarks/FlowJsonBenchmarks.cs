using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Interpose.Core.Flows;
using Interpose.Core.Http;

namespace Interpose.Benchmarks;

/// <summary>
/// A flow's JSON as a store writes it for every recorded exchange (issue 16: recording must cost little): the heads of a
/// typical intercepted HTTPS exchange, TLS on both sides, timings. <see cref="Write"/> takes the writer's raw path for
/// header pairs that need no escaping; <see cref="WriteEscapingEveryString"/> is the same bytes with every string through
/// the encoder (a writer with an explicit encoder takes that path).
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class FlowJsonBenchmarks
{
    private readonly ArrayBufferWriter<byte> _buffer = new(16 * 1024);
    private Utf8JsonWriter _raw = null!;
    private Utf8JsonWriter _escaping = null!;
    private HttpFlow _flow = null!;

    [GlobalSetup]
    public void Setup()
    {
        _raw = new Utf8JsonWriter(_buffer);
        _escaping = new Utf8JsonWriter(_buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.Default });
        var request = new HttpHeaders();
        request.Add("Host", "localhost:8443");
        request.Add("User-Agent", "leanload/1.0");
        request.Add("Accept", "*/*");
        request.Add("Accept-Encoding", "gzip, deflate, br");
        var response = new HttpHeaders();
        response.Add("Server", "nginx/1.22.1");
        response.Add("Date", "Fri, 04 Dec 2026 15:30:00 GMT");
        response.Add("Content-Type", "application/octet-stream");
        response.Add("Content-Length", "1024");
        response.Add("Last-Modified", "Fri, 04 Dec 2026 14:20:00 GMT");
        response.Add("Connection", "keep-alive");
        response.Add("ETag", "\"6751a2b0-400\"");
        response.Add("Accept-Ranges", "bytes");
        _flow = new HttpFlow
        {
            Id = FlowId.New(DateTimeOffset.UtcNow),
            StartedAt = DateTimeOffset.UtcNow,
            Client = new FlowEndpoint("127.0.0.1", 50123),
            Server = new FlowEndpoint("127.0.0.1", 8443),
            Request = new FlowRequest
            {
                Method = "GET", Scheme = "https", Host = "localhost", Port = 8443, Path = "/1k", HttpVersion = "HTTP/1.1",
                Headers = request,
            },
            Response = new FlowResponse
            {
                StatusCode = 200, Reason = "OK", HttpVersion = "HTTP/1.1", Headers = response,
                Body = FlowBody.FromBytes(new byte[1024]),
            },
            ClientHttpVersion = "HTTP/1.1",
            ServerHttpVersion = "HTTP/1.1",
            StreamId = 41,
            ClientConnectionId = "1234",
            ServerConnectionId = "1235",
            Timings = new FlowTimings(null, null, null, 0.0211, 0.1534, 0.1621),
            ClientTls = new FlowTls("Tls13", "TLS_AES_256_GCM_SHA384", null, "localhost"),
            ServerTls = new FlowTls("Tls13", "TLS_AES_256_GCM_SHA384", null, "localhost") { CertificateChain = [new byte[600]] },
        };
    }

    [Benchmark(Baseline = true)]
    public int WriteEscapingEveryString() => WriteWith(_escaping);

    [Benchmark]
    public int Write() => WriteWith(_raw);

    private int WriteWith(Utf8JsonWriter writer)
    {
        _buffer.ResetWrittenCount();
        writer.Reset(_buffer);
        FlowJsonWriter.Write(writer, _flow, bytes: false);
        writer.Flush();
        return _buffer.WrittenCount;
    }
}
