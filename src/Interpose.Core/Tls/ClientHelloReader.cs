using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Interpose.Core.Tls;

/// <summary>
/// Reads a TLS ClientHello from the first bytes of a connection without consuming them, so the proxy can decide
/// between interception and pass-through before answering. Handles a hello spread over several handshake records and
/// split at any byte. Never throws on hostile input: anything malformed is <see cref="ClientHelloParseStatus.Invalid"/>.
/// </summary>
public static class ClientHelloReader
{
    /// <summary>Largest ClientHello handshake message accepted: 64 KiB. A hello with post-quantum key shares is
    /// about 2 KiB; the wire format allows 16 MiB, which nobody should have to buffer.</summary>
    public const int MaxClientHelloLength = 64 * 1024;

    private const int RecordHeaderLength = 5;
    private const int HandshakeHeaderLength = 4;
    private const byte HandshakeContentType = 22;
    private const byte ClientHelloType = 1;

    // RFC 8446 §5.1: "The length MUST NOT exceed 2^14 bytes."
    private const int MaxRecordPayload = 1 << 14;

    private const ushort ServerNameExtension = 0;
    private const ushort AlpnExtension = 16;
    private const ushort SupportedVersionsExtension = 43;

    /// <summary>Tries to read a ClientHello from the start of <paramref name="buffer"/>.</summary>
    /// <param name="buffer">The first bytes from the client; not consumed.</param>
    /// <param name="hello">The parsed hello when the result is <see cref="ClientHelloParseStatus.Parsed"/>.</param>
    /// <returns>The outcome.</returns>
    public static ClientHelloParseStatus TryRead(in ReadOnlySequence<byte> buffer, out ClientHello? hello)
    {
        hello = null;

        // Pass 1: walk record headers, gathering the handshake header, until the records cover the whole message.
        var reader = new SequenceReader<byte>(buffer);
        Span<byte> handshakeHeader = stackalloc byte[HandshakeHeaderLength];
        int headerBytes = 0;
        long messageLength = -1; // handshake body length once known
        long gathered = 0;
        bool first = true;
        while (messageLength < 0 || gathered < messageLength + HandshakeHeaderLength)
        {
            ClientHelloParseStatus header = ReadRecordHeader(ref reader, first, out int recordLength);
            if (header != ClientHelloParseStatus.Parsed)
            {
                return header;
            }

            first = false;
            long available = Math.Min(recordLength, reader.Remaining);
            ReadOnlySequence<byte> fragment = reader.UnreadSequence.Slice(0, available);
            if (headerBytes < HandshakeHeaderLength)
            {
                int n = (int)Math.Min(HandshakeHeaderLength - headerBytes, fragment.Length);
                fragment.Slice(0, n).CopyTo(handshakeHeader[headerBytes..]);
                headerBytes += n;
                if (headerBytes > 0 && handshakeHeader[0] != ClientHelloType)
                {
                    return ClientHelloParseStatus.Invalid;
                }

                if (headerBytes == HandshakeHeaderLength)
                {
                    messageLength = (handshakeHeader[1] << 16) | (handshakeHeader[2] << 8) | handshakeHeader[3];
                    if (messageLength > MaxClientHelloLength)
                    {
                        return ClientHelloParseStatus.Invalid;
                    }
                }
            }

            gathered += available;
            if (available < recordLength)
            {
                return ClientHelloParseStatus.Incomplete;
            }

            reader.Advance(recordLength);
        }

        // Pass 2: copy the handshake message out of its records and parse it.
        int total = (int)messageLength;
        byte[] message = new byte[total];
        var copier = new SequenceReader<byte>(buffer);
        int copiedBody = 0;
        int skipHeader = HandshakeHeaderLength;
        while (copiedBody < total)
        {
            copier.Advance(3);
            copier.TryReadBigEndian(out short lengthField);
            int recordLength = (ushort)lengthField;
            ReadOnlySequence<byte> fragment = copier.UnreadSequence.Slice(0, recordLength);
            int skip = Math.Min(skipHeader, recordLength);
            skipHeader -= skip;
            int n = (int)Math.Min(fragment.Length - skip, total - copiedBody);
            fragment.Slice(skip, n).CopyTo(message.AsSpan(copiedBody));
            copiedBody += n;
            copier.Advance(recordLength);
        }

        hello = Parse(message, (int)copier.Consumed);
        return hello is null ? ClientHelloParseStatus.Invalid : ClientHelloParseStatus.Parsed;
    }

    private static ClientHelloParseStatus ReadRecordHeader(ref SequenceReader<byte> reader, bool first, out int recordLength)
    {
        recordLength = 0;
        Span<byte> header = stackalloc byte[RecordHeaderLength];
        int have = (int)Math.Min(reader.Remaining, RecordHeaderLength);
        reader.UnreadSequence.Slice(0, have).CopyTo(header);

        // RFC 8446 §5.1: TLSPlaintext = type(1) legacy_record_version(2) length(2) fragment.
        // Interleaved non-handshake records are not allowed inside a ClientHello flight.
        if (have >= 1 && header[0] != HandshakeContentType)
        {
            return first ? ClientHelloParseStatus.NotTls : ClientHelloParseStatus.Invalid;
        }

        // Record versions 0x0300..0x0304 (SSL 3.0 hellos are still parsed so the proxy can refuse them knowingly).
        if ((have >= 2 && header[1] != 3) || (have >= 3 && header[2] > 4))
        {
            return first ? ClientHelloParseStatus.NotTls : ClientHelloParseStatus.Invalid;
        }

        if (have < RecordHeaderLength)
        {
            return ClientHelloParseStatus.Incomplete;
        }

        recordLength = BinaryPrimitives.ReadUInt16BigEndian(header[3..]);

        // RFC 8446 §5.1: handshake records are never empty and never exceed 2^14 bytes.
        if (recordLength is 0 or > MaxRecordPayload)
        {
            return ClientHelloParseStatus.Invalid;
        }

        reader.Advance(RecordHeaderLength);
        return ClientHelloParseStatus.Parsed;
    }

    /// <summary>Parses the ClientHello body (after the 4-byte handshake header); null when malformed.</summary>
    private static ClientHello? Parse(byte[] message, int recordBytes)
    {
        var r = new BodyReader(message);

        // RFC 8446 §4.1.2: legacy_version, random[32], legacy_session_id<0..32>, cipher_suites<2..2^16-2>,
        // legacy_compression_methods<1..2^8-1>, extensions<8..2^16-1> (absent in very old hellos).
        if (!r.TryReadUInt16(out ushort legacyVersion) || !r.TrySkip(32)
            || !r.TryReadVector8(out ReadOnlySpan<byte> sessionId) || sessionId.Length > 32
            || !r.TryReadVector16(out ReadOnlySpan<byte> suites) || suites.Length < 2 || (suites.Length & 1) != 0
            || !r.TryReadVector8(out ReadOnlySpan<byte> compression) || compression.IsEmpty)
        {
            return null;
        }

        var cipherSuites = new ushort[suites.Length / 2];
        for (int i = 0; i < cipherSuites.Length; i++)
        {
            cipherSuites[i] = BinaryPrimitives.ReadUInt16BigEndian(suites[(i * 2)..]);
        }

        string? serverName = null;
        List<string> alpn = [];
        List<ushort> versions = [];
        List<ushort> extensionTypes = [];
        if (!r.End)
        {
            if (!r.TryReadVector16(out ReadOnlySpan<byte> extensions) || !r.End)
            {
                return null;
            }

            var e = new BodyReader(extensions);
            bool sawSni = false, sawAlpn = false, sawVersions = false;
            while (!e.End)
            {
                if (!e.TryReadUInt16(out ushort type) || !e.TryReadVector16(out ReadOnlySpan<byte> data))
                {
                    return null;
                }

                extensionTypes.Add(type);
                switch (type)
                {
                    // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type"; checked for the ones read here.
                    case ServerNameExtension:
                        if (sawSni || !TryParseServerName(data, out serverName))
                        {
                            return null;
                        }

                        sawSni = true;
                        break;
                    case AlpnExtension:
                        if (sawAlpn || !TryParseAlpn(data, alpn))
                        {
                            return null;
                        }

                        sawAlpn = true;
                        break;
                    case SupportedVersionsExtension:
                        if (sawVersions || !TryParseVersions(data, versions))
                        {
                            return null;
                        }

                        sawVersions = true;
                        break;
                    default:
                        break;
                }
            }
        }

        return new ClientHello(legacyVersion, serverName, alpn, cipherSuites, versions, extensionTypes, recordBytes);
    }

    private static bool TryParseServerName(ReadOnlySpan<byte> data, out string? serverName)
    {
        // RFC 6066 §3: ServerNameList = server_name_list<1..2^16-1> of { name_type(1), HostName<1..2^16-1> };
        // "The ServerNameList MUST NOT contain more than one name of the same name_type."
        serverName = null;
        var r = new BodyReader(data);
        if (!r.TryReadVector16(out ReadOnlySpan<byte> list) || !r.End || list.IsEmpty)
        {
            return false;
        }

        var l = new BodyReader(list);
        while (!l.End)
        {
            if (!l.TryReadByte(out byte nameType) || !l.TryReadVector16(out ReadOnlySpan<byte> name) || name.IsEmpty)
            {
                return false;
            }

            if (nameType == 0)
            {
                // A host name is printable ASCII; anything else would end up in a forged certificate or a log line.
                if (serverName is not null || name.IndexOfAnyExceptInRange((byte)0x21, (byte)0x7E) >= 0)
                {
                    return false;
                }

                serverName = Encoding.ASCII.GetString(name);
            }
        }

        return true;
    }

    private static bool TryParseAlpn(ReadOnlySpan<byte> data, List<string> protocols)
    {
        // RFC 7301 §3.1: ProtocolNameList = ProtocolName protocol_name_list<2..2^16-1>, ProtocolName<1..2^8-1>.
        var r = new BodyReader(data);
        if (!r.TryReadVector16(out ReadOnlySpan<byte> list) || !r.End || list.Length < 2)
        {
            return false;
        }

        var l = new BodyReader(list);
        while (!l.End)
        {
            if (!l.TryReadVector8(out ReadOnlySpan<byte> name) || name.IsEmpty)
            {
                return false;
            }

            protocols.Add(Encoding.Latin1.GetString(name));
        }

        return true;
    }

    private static bool TryParseVersions(ReadOnlySpan<byte> data, List<ushort> versions)
    {
        // RFC 8446 §4.2.1: ProtocolVersion versions<2..254> in a ClientHello.
        var r = new BodyReader(data);
        if (!r.TryReadVector8(out ReadOnlySpan<byte> list) || !r.End || list.Length < 2 || (list.Length & 1) != 0)
        {
            return false;
        }

        for (int i = 0; i < list.Length; i += 2)
        {
            versions.Add(BinaryPrimitives.ReadUInt16BigEndian(list[i..]));
        }

        return true;
    }

    /// <summary>A bounds-checked cursor over TLS presentation-language vectors.</summary>
    private ref struct BodyReader
    {
        private ReadOnlySpan<byte> _rest;

        public BodyReader(ReadOnlySpan<byte> data)
        {
            _rest = data;
        }

        public readonly bool End => _rest.IsEmpty;

        public bool TryReadByte(out byte value)
        {
            value = 0;
            if (_rest.IsEmpty)
            {
                return false;
            }

            value = _rest[0];
            _rest = _rest[1..];
            return true;
        }

        public bool TryReadUInt16(out ushort value)
        {
            value = 0;
            if (_rest.Length < 2)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt16BigEndian(_rest);
            _rest = _rest[2..];
            return true;
        }

        public bool TrySkip(int count)
        {
            if (_rest.Length < count)
            {
                return false;
            }

            _rest = _rest[count..];
            return true;
        }

        public bool TryReadVector8(out ReadOnlySpan<byte> vector)
        {
            vector = default;
            return TryReadByte(out byte length) && TryTake(length, out vector);
        }

        public bool TryReadVector16(out ReadOnlySpan<byte> vector)
        {
            vector = default;
            return TryReadUInt16(out ushort length) && TryTake(length, out vector);
        }

        private bool TryTake(int length, out ReadOnlySpan<byte> vector)
        {
            vector = default;
            if (_rest.Length < length)
            {
                return false;
            }

            vector = _rest[..length];
            _rest = _rest[length..];
            return true;
        }
    }
}
