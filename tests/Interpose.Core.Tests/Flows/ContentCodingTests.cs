using System.Text;
using Interpose.Core.Flows;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace Interpose.Core.Tests.Flows;

/// <summary>Content codings undone for showing and exporting: zstd (RFC 8878) beside gzip, deflate and br, bounded alike.</summary>
public sealed class ContentCodingTests
{
    private const string Json = "{\"hello\":\"zstd\",\"n\":[1,2,3],\"text\":\"The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog.\"}";

    // The JSON above as the zstd command (v1.5.4, `zstd -19`) wrote it: real data from another implementation.
    private const string ZstdCliHex =
        "28b52ffd247fb5020032451319706f0e1091fe6ead45206bbf0558fb555d6bb2b14854556706d91758faad751d7119d69d3cf552e8919aad5a"
        + "5949f544d64918295a86c4dd6bc5f5cd189ad082c25dbefd557addbd6364782c010051d054516efff727";

    [Fact]
    public void A_body_from_the_zstd_command_is_decoded()
    {
        var body = Convert.FromHexString(ZstdCliHex);

        Assert.True(ContentCoding.CanDecode("zstd"));
        Assert.True(ContentCoding.TryDecode(body, "zstd", out var decoded));
        Assert.Equal(Json, Encoding.UTF8.GetString(decoded.Span));
    }

    [Fact]
    public void Zstd_under_gzip_is_undone_last_to_first_and_encode_round_trips()
    {
        var plain = Encoding.UTF8.GetBytes(Json);
        var encoded = ContentCoding.Encode(plain, "zstd, gzip");

        Assert.True(ContentCoding.TryDecode(encoded, "zstd, gzip", out var decoded));
        Assert.Equal(plain, decoded.ToArray());
    }

    [Fact]
    public void A_truncated_or_corrupt_zstd_body_is_left_as_recorded()
    {
        var body = Convert.FromHexString(ZstdCliHex);
        var truncated = body.AsMemory(0, body.Length / 2);
        var corrupt = (byte[])body.Clone();
        corrupt[20] ^= 0xFF;

        Assert.False(ContentCoding.TryDecode(truncated, "zstd", out var kept));
        Assert.Equal(truncated.ToArray(), kept.ToArray());
        Assert.False(ContentCoding.TryDecode(corrupt, "zstd", out _));
    }

    [Fact]
    public void A_zstd_bomb_stops_at_the_decoded_limit()
    {
        // A few KiB that expand past the limit: the decoder stops there instead of filling memory.
        using var compressed = new MemoryStream();
        using (var encoder = new CompressionStream(compressed, level: 3, leaveOpen: true))
        {
            var zeros = new byte[1024 * 1024];
            for (var written = 0L; written <= ContentCoding.MaxDecodedBytes; written += zeros.Length)
            {
                encoder.Write(zeros);
            }
        }

        Assert.True(compressed.Length < ContentCoding.MaxDecodedBytes / 1000);
        Assert.False(ContentCoding.TryDecode(compressed.ToArray(), "zstd", out var kept));
        Assert.Equal(compressed.Length, kept.Length);
        // Under the limit, the same data decodes: the limit, not the data, stopped it.
        Assert.True(ContentCoding.TryDecode(compressed.ToArray(), "zstd", out _, maxDecodedBytes: int.MaxValue));
    }

    [Fact]
    public void A_zstd_frame_asking_for_a_window_over_RFC_9659s_8_MB_is_refused()
    {
        // A streamed frame (no content size) declares its window; 2^27 is within libzstd's default limit, not RFC 9659's.
        using var compressed = new MemoryStream();
        using (var encoder = new CompressionStream(compressed, level: 3, leaveOpen: true))
        {
            encoder.SetParameter(ZSTD_cParameter.ZSTD_c_windowLog, 27);
            encoder.Write(Encoding.UTF8.GetBytes(Json));
        }

        Assert.False(ContentCoding.TryDecode(compressed.ToArray(), "zstd", out _));
    }
}
