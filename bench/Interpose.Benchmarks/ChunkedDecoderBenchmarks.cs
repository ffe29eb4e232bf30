using System.Buffers;
using BenchmarkDotNet.Attributes;
using Interpose.Core.Http;

namespace Interpose.Benchmarks;

/// <summary>Decoding a 64 KiB chunked body (16 chunks of 4 KiB) from one buffer.</summary>
[MemoryDiagnoser]
public class ChunkedDecoderBenchmarks
{
    private const int BodySize = 64 * 1024;
    private const int ChunkSize = 4 * 1024;
    private readonly ChunkedDecoder _decoder = new(Http1Limits.Default);
    private ReadOnlySequence<byte> _encoded;

    [GlobalSetup]
    public void Setup()
    {
        var writer = new ArrayBufferWriter<byte>();
        byte[] chunk = new byte[ChunkSize];
        for (int written = 0; written < BodySize; written += ChunkSize)
        {
            ChunkedEncoder.WriteChunkHeader(ChunkSize, writer);
            writer.Write(chunk);
            ChunkedEncoder.WriteChunkTerminator(writer);
        }

        ChunkedEncoder.WriteLastChunk(null, writer);
        _encoded = new ReadOnlySequence<byte>(writer.WrittenMemory);
    }

    [Benchmark]
    public long Decode64KiB()
    {
        _decoder.Reset();
        ReadOnlySequence<byte> input = _encoded;
        long total = 0;
        while (true)
        {
            ChunkedReadResult result = _decoder.Read(input, out SequencePosition consumed, out ReadOnlySequence<byte> data);
            input = input.Slice(consumed);
            if (result == ChunkedReadResult.Data)
            {
                total += data.Length;
            }
            else if (result == ChunkedReadResult.Completed)
            {
                return total;
            }
        }
    }
}
