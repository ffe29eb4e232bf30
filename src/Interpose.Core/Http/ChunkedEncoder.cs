using System.Buffers;
using System.Text;

namespace Interpose.Core.Http;

/// <summary>Writes the chunked transfer coding (RFC 9112 §7.1): <c>size CRLF data CRLF</c> ... <c>0 CRLF trailers CRLF</c>.</summary>
public static class ChunkedEncoder
{
    private const int MaxHexDigits = 16;

    /// <summary>Writes a chunk-size line (lower-case hex, no extensions) for a chunk of <paramref name="size"/> bytes.</summary>
    /// <param name="size">The payload size; must be positive (use <see cref="WriteLastChunk"/> to end the body).</param>
    /// <param name="o">Where the bytes go.</param>
    /// <exception cref="ArgumentNullException"><paramref name="o"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is zero or negative.</exception>
    public static void WriteChunkHeader(long size, IBufferWriter<byte> o)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Span<byte> span = o.GetSpan(MaxHexDigits + 2);
        bool ok = size.TryFormat(span, out int written, "x", null);
        System.Diagnostics.Debug.Assert(ok, "16 hex digits always fit");
        span[written] = (byte)'\r';
        span[written + 1] = (byte)'\n';
        o.Advance(written + 2);
    }

    /// <summary>Writes the CRLF that ends a chunk's data.</summary>
    /// <param name="o">Where the bytes go.</param>
    /// <exception cref="ArgumentNullException"><paramref name="o"/> is null.</exception>
    public static void WriteChunkTerminator(IBufferWriter<byte> o)
    {
        ArgumentNullException.ThrowIfNull(o);
        o.Write("\r\n"u8);
    }

    /// <summary>Writes the last-chunk (<c>0 CRLF</c>), any trailer fields, and the final CRLF.</summary>
    /// <param name="trailers">Trailer fields to send, or <see langword="null"/>.</param>
    /// <param name="o">Where the bytes go.</param>
    /// <exception cref="ArgumentNullException"><paramref name="o"/> is null.</exception>
    public static void WriteLastChunk(HttpHeaders? trailers, IBufferWriter<byte> o)
    {
        ArgumentNullException.ThrowIfNull(o);
        o.Write("0\r\n"u8);
        if (trailers is not null)
        {
            foreach (HttpHeader h in trailers)
            {
                int length = h.Name.Length + 2 + h.Value.Length + 2;
                Span<byte> span = o.GetSpan(length);
                int pos = Encoding.Latin1.GetBytes(h.Name, span);
                span[pos++] = (byte)':';
                span[pos++] = (byte)' ';
                pos += Encoding.Latin1.GetBytes(h.Value, span[pos..]);
                span[pos++] = (byte)'\r';
                span[pos++] = (byte)'\n';
                o.Advance(pos);
            }
        }

        o.Write("\r\n"u8);
    }
}
