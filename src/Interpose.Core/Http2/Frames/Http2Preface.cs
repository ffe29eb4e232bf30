namespace Interpose.Core.Http2;

/// <summary>The client connection preface (RFC 9113 §3.4): "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", followed by a SETTINGS
/// frame.</summary>
public static class Http2Preface
{
    /// <summary>The 24 octets every HTTP/2 client sends first.</summary>
    public static ReadOnlySpan<byte> ClientPreface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>The preface length (24).</summary>
    public const int Length = 24;

    /// <summary>Checks the start of <paramref name="buffer"/> against the preface without consuming.</summary>
    /// <param name="buffer">What the client sent so far.</param>
    /// <returns><see cref="PrefaceMatch.Complete"/> when the full preface is there,
    /// <see cref="PrefaceMatch.Incomplete"/> when what is there matches so far, <see cref="PrefaceMatch.Mismatch"/>
    /// otherwise (RFC 9113 §3.4: a connection error of type PROTOCOL_ERROR).</returns>
    public static PrefaceMatch Match(ReadOnlySpan<byte> buffer)
    {
        int n = Math.Min(buffer.Length, Length);
        if (!buffer[..n].SequenceEqual(ClientPreface[..n]))
        {
            return PrefaceMatch.Mismatch;
        }

        return n == Length ? PrefaceMatch.Complete : PrefaceMatch.Incomplete;
    }
}
