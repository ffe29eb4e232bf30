namespace Interpose.Core.Http;

/// <summary>What one <see cref="ChunkedDecoder.Read"/> call produced.</summary>
public enum ChunkedReadResult
{
    /// <summary>The input ended inside framing; nothing to hand out yet.</summary>
    NeedMoreData,

    /// <summary>Chunk payload bytes were returned.</summary>
    Data,

    /// <summary>The last chunk and the trailer section were read; the body is complete.</summary>
    Completed,
}
