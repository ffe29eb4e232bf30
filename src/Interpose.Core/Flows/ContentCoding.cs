using System.IO.Compression;

namespace Interpose.Core.Flows;

/// <summary>
/// Content codings (RFC 9110 §8.4.1) that the BCL can undo and redo: gzip, deflate and br. zstd is not in the BCL, so a
/// zstd body stays encoded; so does one in any other or unknown coding.
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
            catch (Exception ex) when (ex is InvalidDataException or IOException or NotSupportedException)
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
        || coding.Equals("deflate", StringComparison.OrdinalIgnoreCase) || coding.Equals("br", StringComparison.OrdinalIgnoreCase);

    private static Stream Compressor(Stream output, string coding) => coding.ToLowerInvariant() switch
    {
        "gzip" or "x-gzip" => new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true),
        // RFC 9110 §8.4.1.2: "deflate" is the zlib format (RFC 1950) around deflate data.
        "deflate" => new ZLibStream(output, CompressionLevel.Optimal, leaveOpen: true),
        "br" => new BrotliStream(output, CompressionLevel.Optimal, leaveOpen: true),
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
}
