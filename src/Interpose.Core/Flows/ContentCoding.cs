using System.IO.Compression;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace Interpose.Core.Flows;

/// <summary>
/// Content codings (RFC 9110 §8.4.1) that can be undone and redone here: gzip, deflate and br with the BCL, zstd
/// (RFC 8878) with ZstdSharp. A body in any other or unknown coding stays encoded.
/// </summary>
internal static class ContentCoding
{
    /// <summary>
    /// The most bytes a decoded body may reach: a decompression bomb (a few KiB that inflate to GiB) must not exhaust
    /// memory when a flow is shown or exported. 64 MiB is 64 times the default recording cap (1 MiB), far above any
    /// page a person reads.
    /// </summary>
    public const int MaxDecodedBytes = 64 * 1024 * 1024;

    /// <summary>
    /// The largest zstd window (log2 of bytes) the decoder accepts: RFC 9659 §3 caps the window of the "zstd" content
    /// coding at 8 MB (2^23) and lets a decoder refuse more, so a frame header claiming a huge window cannot make the
    /// decoder allocate it (libzstd's own default limit is 2^27).
    /// </summary>
    public const int MaxZstdWindowLog = 23;

    /// <summary>
    /// Decodes <paramref name="body"/> per <paramref name="contentEncoding"/> (codings listed in the order applied,
    /// RFC 9110 §8.4: so undone last to first). False when a coding is not supported, the data is corrupt or truncated,
    /// or the result would pass <paramref name="maxDecodedBytes"/>.
    /// </summary>
    public static bool TryDecode(ReadOnlyMemory<byte> body, string? contentEncoding, out ReadOnlyMemory<byte> decoded, int maxDecodedBytes = MaxDecodedBytes)
    {
        decoded = body;
        if (string.IsNullOrWhiteSpace(contentEncoding))
        {
            return true;
        }

        var codings = contentEncoding.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        for (var i = codings.Length - 1; i >= 0; i--)
        {
            var coding = codings[i];
            if (coding.Equals("identity", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (!IsSupported(coding))
            {
                return false;
            }

            try
            {
                decoded = Inflate(decoded, coding, maxDecodedBytes);
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException or NotSupportedException or ZstdException)
            {
                decoded = body;
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether every coding in <paramref name="contentEncoding"/> can be undone here (true when there is none).</summary>
    public static bool CanDecode(string? contentEncoding)
    {
        if (string.IsNullOrWhiteSpace(contentEncoding))
        {
            return true;
        }

        foreach (var coding in contentEncoding.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!coding.Equals("identity", StringComparison.OrdinalIgnoreCase) && !IsSupported(coding))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Encodes <paramref name="body"/> per <paramref name="contentEncoding"/> (first coding applied first); the
    /// caller checked <see cref="CanDecode"/>.</summary>
    public static byte[] Encode(ReadOnlySpan<byte> body, string contentEncoding)
    {
        var data = body.ToArray();
        foreach (var coding in contentEncoding.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (coding.Equals("identity", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            using var output = new MemoryStream();
            using (var compressor = Compressor(output, coding))
            {
                compressor.Write(data);
            }

            data = output.ToArray();
        }

        return data;
    }

    private static bool IsSupported(string coding) =>
        coding.Equals("gzip", StringComparison.OrdinalIgnoreCase) || coding.Equals("x-gzip", StringComparison.OrdinalIgnoreCase)
        || coding.Equals("deflate", StringComparison.OrdinalIgnoreCase) || coding.Equals("br", StringComparison.OrdinalIgnoreCase)
        || coding.Equals("zstd", StringComparison.OrdinalIgnoreCase);

    private static Stream Compressor(Stream output, string coding) => coding.ToLowerInvariant() switch
    {
        "gzip" or "x-gzip" => new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true),
        // RFC 9110 §8.4.1.2: "deflate" is the zlib format (RFC 1950) around deflate data.
        "deflate" => new ZLibStream(output, CompressionLevel.Optimal, leaveOpen: true),
        "br" => new BrotliStream(output, CompressionLevel.Optimal, leaveOpen: true),
        // zstd's default level (3), as the zstd command uses; its window stays far under RFC 9659's 8 MB for it.
        "zstd" => new CompressionStream(output, level: 3, leaveOpen: true),
        _ => throw new NotSupportedException("content coding " + coding),
    };

    private static byte[] Inflate(ReadOnlyMemory<byte> data, string coding, int max)
    {
        try
        {
            return InflateWith(data, coding, max);
        }
        catch (InvalidDataException) when (coding.Equals("deflate", StringComparison.OrdinalIgnoreCase))
        {
            // Some servers send raw deflate without the zlib wrapper; browsers accept it, so do we.
            return InflateWith(data, "raw-deflate", max);
        }
    }

    private static byte[] InflateWith(ReadOnlyMemory<byte> data, string coding, int max)
    {
        using var input = new MemoryStream(data.ToArray(), writable: false);
        using Stream decompressor = coding.ToLowerInvariant() switch
        {
            "gzip" or "x-gzip" => new GZipStream(input, CompressionMode.Decompress),
            "deflate" => new ZLibStream(input, CompressionMode.Decompress),
            "raw-deflate" => new DeflateStream(input, CompressionMode.Decompress),
            "br" => new BrotliStream(input, CompressionMode.Decompress),
            "zstd" => ZstdDecoder(input),
            _ => throw new NotSupportedException("content coding " + coding),
        };
        using var output = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = decompressor.Read(buffer)) > 0)
        {
            if (output.Length + read > max)
            {
                throw new InvalidDataException("the decoded body passes the limit");
            }

            output.Write(buffer, 0, read);
        }

        return output.ToArray();
    }

    /// <summary>A zstd decoder that refuses windows over <see cref="MaxZstdWindowLog"/>; output is bounded by the caller.</summary>
    private static DecompressionStream ZstdDecoder(Stream input)
    {
        var decoder = new DecompressionStream(input, leaveOpen: true);
        decoder.SetParameter(ZSTD_dParameter.ZSTD_d_windowLogMax, MaxZstdWindowLog);
        return decoder;
    }
}
