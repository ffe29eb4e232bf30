using System.Buffers;

namespace Interpose.Core;

/// <summary>Classifies a connection from its first bytes, so one listener can take TLS and plain HTTP.</summary>
public static class ProtocolSniffer
{
    /// <summary>Longest method token looked at before giving up: 24 covers every registered method
    /// (the longest, "UPDATEREDIRECTREF", has 17 characters).</summary>
    public const int MaxMethodLength = 24;

    /// <summary>Classifies <paramref name="firstBytes"/>: a TLS record is <c>0x16 0x03 0x00..0x04</c>; HTTP starts with an
    /// upper-case method token (A-Z, '-', '_') followed by SP.</summary>
    /// <param name="firstBytes">The bytes received so far; not consumed.</param>
    /// <returns>The classification, or <see cref="SniffedProtocol.NeedMoreData"/> when the prefix fits both or neither yet.</returns>
    public static SniffedProtocol Detect(in ReadOnlySequence<byte> firstBytes)
    {
        Span<byte> head = stackalloc byte[MaxMethodLength + 1];
        int have = (int)Math.Min(firstBytes.Length, head.Length);
        firstBytes.Slice(0, have).CopyTo(head);
        head = head[..have];
        if (have == 0)
        {
            return SniffedProtocol.NeedMoreData;
        }

        // RFC 8446 §5.1: ContentType handshake(22), legacy_record_version 0x03 0x0X.
        if (head[0] == 0x16)
        {
            if (have < 2)
            {
                return SniffedProtocol.NeedMoreData;
            }

            if (head[1] != 0x03)
            {
                return SniffedProtocol.Unknown;
            }

            if (have < 3)
            {
                return SniffedProtocol.NeedMoreData;
            }

            return head[2] <= 0x04 ? SniffedProtocol.Tls : SniffedProtocol.Unknown;
        }

        for (int i = 0; i < have; i++)
        {
            byte b = head[i];
            if (b == (byte)' ')
            {
                return i > 0 ? SniffedProtocol.Http : SniffedProtocol.Unknown;
            }

            if (!(b is >= (byte)'A' and <= (byte)'Z' || b is (byte)'-' or (byte)'_'))
            {
                return SniffedProtocol.Unknown;
            }
        }

        return have > MaxMethodLength ? SniffedProtocol.Unknown : SniffedProtocol.NeedMoreData;
    }
}
