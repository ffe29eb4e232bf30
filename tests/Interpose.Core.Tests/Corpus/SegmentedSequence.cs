using System.Buffers;

namespace Interpose.Core.Tests.Corpus;

/// <summary>Builds a multi-segment <see cref="ReadOnlySequence{T}"/> so parsers see segment boundaries where a pipe would put them.</summary>
public static class SegmentedSequence
{
    public static ReadOnlySequence<byte> Create(params byte[][] segments)
    {
        if (segments.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(segments[0], 0);
        Segment last = first;
        for (int i = 1; i < segments.Length; i++)
        {
            last = last.Append(segments[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Splits <paramref name="bytes"/> into segments of at most <paramref name="size"/> bytes.</summary>
    public static ReadOnlySequence<byte> Chunked(byte[] bytes, int size)
    {
        var parts = new List<byte[]>();
        for (int i = 0; i < bytes.Length; i += size)
        {
            parts.Add(bytes[i..Math.Min(bytes.Length, i + size)]);
        }

        return Create([.. parts]);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
