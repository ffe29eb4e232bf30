using System.Buffers;
using System.Text;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;

namespace Interpose.Core.Tests.Http2;

/// <summary>Byte builders and summaries shared by the HTTP/2 tests. Frames are built by hand here, not with
/// <see cref="Http2FrameWriter"/>, so reader and writer are checked against the RFC layout independently.</summary>
internal static class Http2TestData
{
    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal));

    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    /// <summary>A raw frame: 24-bit length (defaults to the payload's), type, flags, 31-bit stream id (+ reserved bit).</summary>
    public static byte[] Frame(byte type, byte flags, uint streamId, byte[] payload, int? length = null)
    {
        int len = length ?? payload.Length;
        var frame = new byte[9 + payload.Length];
        frame[0] = (byte)(len >> 16);
        frame[1] = (byte)(len >> 8);
        frame[2] = (byte)len;
        frame[3] = type;
        frame[4] = flags;
        frame[5] = (byte)(streamId >> 24);
        frame[6] = (byte)(streamId >> 16);
        frame[7] = (byte)(streamId >> 8);
        frame[8] = (byte)streamId;
        payload.CopyTo(frame, 9);
        return frame;
    }

    public static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    /// <summary>Everything observable about a frame, for equality across split points.</summary>
    public static string Describe(in Http2Frame f)
    {
        var sb = new StringBuilder();
        sb.Append($"{f.Type}/{(byte)f.Flags:x2}/s{f.StreamId}/len{f.Header.Length}/p={ToHex(f.Payload.ToArray())}/pad{f.PadLength}");
        switch (f.Type)
        {
            case FrameType.RstStream: sb.Append($"/code={f.ErrorCode}"); break;
            case FrameType.GoAway: sb.Append($"/last={f.LastStreamId}/code={f.ErrorCode}"); break;
            case FrameType.WindowUpdate: sb.Append($"/inc={f.WindowSizeIncrement}"); break;
            case FrameType.Ping: sb.Append($"/ping={f.PingData:x16}"); break;
            case FrameType.PushPromise: sb.Append($"/promised={f.PromisedStreamId}"); break;
            case FrameType.Settings:
                for (int i = 0; i < f.SettingsCount; i++)
                {
                    sb.Append($"/{f.GetSetting(i).Parameter}={f.GetSetting(i).Value}");
                }

                break;
        }

        if (f.Weight != 0)
        {
            sb.Append($"/dep={f.StreamDependency}/excl={f.IsExclusive}/w={f.Weight}");
        }

        return sb.ToString();
    }

    public static List<string> ReadAll(ReadOnlySequence<byte> buffer, int maxFrameSize = 16384)
    {
        var frames = new List<string>();
        while (Http2FrameReader.TryReadFrame(ref buffer, maxFrameSize, out Http2Frame frame))
        {
            frames.Add(Describe(frame));
        }

        Assert.Equal(0, buffer.Length);
        return frames;
    }
}

/// <summary>Collects decoded fields as "name: value" strings (never-indexed ones marked).</summary>
internal sealed class FieldCollector : IHeaderFieldHandler
{
    public List<string> Fields { get; } = [];

    public List<Interpose.Core.Http.HttpHeader> Headers { get; } = [];

    public void OnHeaderField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed)
    {
        string n = Encoding.Latin1.GetString(name);
        string v = Encoding.Latin1.GetString(value);
        Fields.Add((neverIndexed ? "(never) " : "") + n + ": " + v);
        Headers.Add(new(n, v));
    }
}
