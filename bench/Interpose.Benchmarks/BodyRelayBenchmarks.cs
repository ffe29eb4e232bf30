using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Interpose.Core.Http;
using Interpose.Proxy.Internal;

namespace Interpose.Benchmarks;

/// <summary>
/// The body relay on the no-hook path (bytes passed through as received), over an in-memory pipe. The same body is
/// relayed in few large or many small pieces: equal allocations for both prove the per-chunk path allocates nothing.
/// </summary>
[MemoryDiagnoser]
public class BodyRelayBenchmarks
{
    private const int BodySize = 1024 * 1024;
    private readonly ChunkedDecoder _decoder = new(Http1Limits.Default);
    private readonly StreamSink _sink = new(Stream.Null);
    private byte[] _chunkedBody = [];
    private byte[] _plainBody = [];

    /// <summary>How many pieces the body arrives in (the pipe is fed and read that many times).</summary>
    [Params(16, 256)]
    public int Pieces { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var writer = new ArrayBufferWriter<byte>();
        var chunk = new byte[BodySize / Pieces];
        for (var i = 0; i < Pieces; i++)
        {
            ChunkedEncoder.WriteChunkHeader(chunk.Length, writer);
            writer.Write(chunk);
            ChunkedEncoder.WriteChunkTerminator(writer);
        }

        ChunkedEncoder.WriteLastChunk(null, writer);
        _chunkedBody = writer.WrittenSpan.ToArray();
        _plainBody = new byte[BodySize];
    }

    [Benchmark]
    public Task<long> ContentLengthBody() => RelayAsync(new BodyFraming(BodyKind.ContentLength, BodySize), _plainBody);

    [Benchmark]
    public Task<long> ChunkedBodyPassedThrough() => RelayAsync(new BodyFraming(BodyKind.Chunked, 0), _chunkedBody);

    private async Task<long> RelayAsync(BodyFraming framing, byte[] body)
    {
        // The pipe stands for the connection: written in Pieces writes, read by the relay as they come.
        // Default thresholds: the writer waits for the relay as a socket would (back-pressure), so buffers stay few.
        var pipe = new Pipe(new PipeOptions(useSynchronizationContext: false));
        var piece = (body.Length + Pieces - 1) / Pieces;
        var relay = BodyReader.RelayAsync(pipe.Reader, framing, _decoder, _sink, raw: true, destination: null, CancellationToken.None);
        for (var offset = 0; offset < body.Length; offset += piece)
        {
            await pipe.Writer.WriteAsync(body.AsMemory(offset, Math.Min(piece, body.Length - offset)));
        }

        var total = await relay;
        await pipe.Writer.CompleteAsync();
        await pipe.Reader.CompleteAsync();
        return total;
    }
}
