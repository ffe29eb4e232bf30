using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Http;

namespace Interpose.Store;

/// <summary>
/// A flow in a compact binary form, for <see cref="MemoryFlowStore"/> and the SQLite store's <c>flow</c> column (schema
/// version 4): every property of the flow records in a fixed order, without names; strings in UTF-8 with a length,
/// numbers as variable-length integers, a body's SHA-256 as its 32 bytes. Body bytes and certificate chains are not
/// written (the stores keep them apart); a body keeps its length and hash. Smaller than the flow's JSON
/// (<see cref="FlowJson"/>) and quicker to write and read (docs/performance.md, "Web UI" and "Recording, fifth pass").
/// </summary>
/// <remarks>
/// It is kept in files, so its layout is a promise: the first byte is <see cref="Format"/>, and a change of layout takes
/// a new format number while <see cref="Read"/> keeps reading every older one. The first byte can never be a JSON
/// text's first byte (<c>{</c> or white space), so a reader tells a record from the JSON of older files by it
/// (<see cref="IsRecord"/>). A property added to a flow record must be added to <see cref="Write"/> and
/// <see cref="Read"/>: MemoryFlowStoreTests compares a fully populated flow's JSON before and after the store.
/// </remarks>
internal static class FlowRecord
{
    /// <summary>The layout <see cref="Write"/> writes, its first byte. Format 1: the layout below (2026-12).</summary>
    public const byte Format = 1;

    private const byte HttpKind = 1;
    private const byte TunnelKind = 2;

    /// <summary>SHA-256's length in bytes (FIPS 180-4).</summary>
    private const int Sha256Bytes = 32;

    private const byte HashNone = 0;
    private const byte HashRaw = 1;
    private const byte HashText = 2;

    /// <summary>The largest offset a <see cref="DateTimeOffset"/> takes, in minutes: 14 hours.</summary>
    private const long MaxOffsetMinutes = 14 * 60;

    /// <summary>The SHA-256 of no bytes, the hash of <see cref="FlowBody.Empty"/>.</summary>
    private static readonly byte[] EmptyDigest = System.Security.Cryptography.SHA256.HashData(ReadOnlySpan<byte>.Empty);

    /// <summary>The digits of <see cref="Convert.ToHexStringLower(ReadOnlySpan{byte})"/>, the form a body's hash is kept in.</summary>
    private static readonly SearchValues<char> LowerHex = SearchValues.Create("0123456789abcdef");

    /// <summary>Writes <paramref name="flow"/> without its body bytes and certificate chains.</summary>
    /// <exception cref="NotSupportedException">A kind of flow other than HTTP and tunnel.</exception>
    public static void Write(ArrayBufferWriter<byte> output, Flow flow)
    {
        var w = new Writer(output);
        w.Byte(Format);
        switch (flow)
        {
            case HttpFlow http:
                w.Byte(HttpKind);
                WriteBase(ref w, flow);
                WriteHttp(ref w, http);
                break;
            case TunnelFlow tunnel:
                w.Byte(TunnelKind);
                WriteBase(ref w, flow);
                w.Int((int)tunnel.Kind);
                w.String(tunnel.Host);
                w.Int(tunnel.Port);
                w.String(tunnel.Sni);
                w.Long(tunnel.BytesFromClient);
                w.Long(tunnel.BytesFromServer);
                w.Double(tunnel.DurationMs);
                break;
            default:
                throw new NotSupportedException($"{flow.GetType().Name} is not a known kind of flow.");
        }
    }

    /// <summary>The first format number that is not one: formats run from 1 to 8, below a JSON text's first possible
    /// byte (tab, RFC 8259 §2).</summary>
    private const byte FormatsEnd = (byte)'\t';

    /// <summary>True when <paramref name="stored"/> is a record rather than a flow's JSON (files before schema 4).</summary>
    public static bool IsRecord(ReadOnlySpan<byte> stored) => !stored.IsEmpty && stored[0] is > 0 and < FormatsEnd;

    /// <summary>Reads a flow <see cref="Write"/> wrote: bodies with their length and hash and no bytes, no certificates.</summary>
    /// <exception cref="InvalidDataException">The bytes are not such a flow.</exception>
    public static Flow Read(ReadOnlySpan<byte> record)
    {
        var r = new Reader(record);
        var format = r.Byte();
        if (format != Format)
        {
            throw new InvalidDataException($"flow record of unknown format {format} (this version reads format {Format})");
        }

        var kind = r.Byte();
        var id = r.Guid();
        var startedAt = r.Time();
        var client = r.Endpoint();
        var server = r.Endpoint();
        var error = r.Bool() ? new FlowError(r.Required("an error without a phase"), r.Required("an error without a message"), r.Bool()) : null;
        var tags = r.Tags();
        var marker = r.String();
        var comment = r.String();
        var replay = (FilterReplayKind)r.Int();
        Flow flow = kind switch
        {
            HttpKind => ReadHttp(ref r, id, startedAt),
            TunnelKind => new TunnelFlow
            {
                Id = id, StartedAt = startedAt, Kind = (Core.Flows.TunnelKind)r.Int(), Host = r.Required("a tunnel without a host"), Port = r.Int(), Sni = r.String(),
                BytesFromClient = r.Long(), BytesFromServer = r.Long(), DurationMs = r.Double(),
            },
            _ => throw new InvalidDataException($"flow record of unknown kind {kind}"),
        };
        flow = flow with { Client = client, Server = server, Error = error, Marker = marker, Comment = comment, Replay = replay };
        return tags is null ? flow : flow with { Tags = tags };
    }

    private static void WriteBase(ref Writer w, Flow flow)
    {
        w.Guid(flow.Id);
        w.Time(flow.StartedAt);
        w.Endpoint(flow.Client);
        w.Endpoint(flow.Server);
        w.Bool(flow.Error is not null);
        if (flow.Error is { } error)
        {
            w.String(error.Phase);
            w.String(error.Message);
            w.Bool(error.IsTransient);
        }

        w.Int(flow.Tags.Count);
        foreach (var (name, value) in flow.Tags)
        {
            w.String(name);
            w.String(value);
        }

        w.String(flow.Marker);
        w.String(flow.Comment);
        w.Int((int)flow.Replay);
    }

    private static void WriteHttp(ref Writer w, HttpFlow http)
    {
        var request = http.Request;
        w.String(request.Method);
        w.String(request.Scheme);
        w.String(request.Host);
        w.Int(request.Port);
        w.String(request.Path);
        WriteMessage(ref w, request);
        w.Bool(http.Response is not null);
        if (http.Response is { } response)
        {
            w.Int(response.StatusCode);
            w.String(response.Reason);
            WriteMessage(ref w, response);
        }

        w.String(http.ClientHttpVersion);
        w.String(http.ServerHttpVersion);
        w.Int(http.StreamId);
        w.String(http.ClientConnectionId);
        w.String(http.ServerConnectionId);
        w.Bool(http.IsSynthetic);
        var t = http.Timings;
        w.Double(t.DnsDone);
        w.Double(t.Connected);
        w.Double(t.TlsDone);
        w.Double(t.RequestSent);
        w.Double(t.FirstByte);
        w.Double(t.Done);
        WriteTls(ref w, http.ClientTls);
        WriteTls(ref w, http.ServerTls);
        w.Bool(http.WebSocket is not null);
        if (http.WebSocket is { } ws)
        {
            w.Int(ws.Messages.Count);
            foreach (var m in ws.Messages)
            {
                w.Bool(m.FromClient);
                w.Int((int)m.Opcode);
                w.Double(m.OffsetMs);
                w.Bytes(m.Content.Span);
                w.Long(m.Length);
                w.Bool(m.IsCompressed);
            }

            w.Long(ws.DroppedMessages);
            w.Bool(ws.CloseCode is not null);
            w.Int(ws.CloseCode ?? 0);
            w.String(ws.CloseReason);
            w.Byte(ws.ClosedByClient switch { null => 0, false => 1, true => 2 });
            w.String(ws.ParseError);
        }
    }

    private static void WriteMessage(ref Writer w, FlowMessage message)
    {
        w.String(message.HttpVersion);
        w.Headers(message.Headers);
        w.Long(message.Body.Length);
        w.Hash(message.Body);
        w.Bool(message.Trailers is not null);
        if (message.Trailers is { } trailers)
        {
            w.Headers(trailers);
        }
    }

    private static void WriteTls(ref Writer w, FlowTls? tls)
    {
        w.Bool(tls is not null);
        if (tls is not null)
        {
            w.String(tls.Version);
            w.String(tls.CipherSuite);
            w.String(tls.Alpn);
            w.String(tls.Sni);
        }
    }

    private static HttpFlow ReadHttp(ref Reader r, Guid id, DateTimeOffset startedAt)
    {
        var request = new FlowRequest
        {
            Method = r.Required("a request without a method"), Scheme = r.Required("a request without a scheme"),
            Host = r.Required("a request without a host"), Port = r.Int(), Path = r.Required("a request without a path"),
            HttpVersion = r.Required("a request without an HTTP version"), Headers = r.Headers(),
        };
        request = request with { Body = r.Body(), Trailers = r.Bool() ? r.Headers() : null };
        FlowResponse? response = null;
        if (r.Bool())
        {
            response = new FlowResponse
            {
                StatusCode = r.Int(), Reason = r.Required("a response without a reason phrase"),
                HttpVersion = r.Required("a response without an HTTP version"), Headers = r.Headers(),
            };
            response = response with { Body = r.Body(), Trailers = r.Bool() ? r.Headers() : null };
        }

        var flow = new HttpFlow
        {
            Id = id, StartedAt = startedAt, Request = request, Response = response, ClientHttpVersion = r.Required("an HTTP flow without the client's HTTP version"),
            ServerHttpVersion = r.String(), StreamId = r.Int(), ClientConnectionId = r.String(), ServerConnectionId = r.String(),
            IsSynthetic = r.Bool(),
        };
        var timings = new FlowTimings(r.Double(), r.Double(), r.Double(), r.Double(), r.Double(), r.Double());
        flow = flow with { Timings = timings == FlowTimings.Unknown ? FlowTimings.Unknown : timings, ClientTls = r.Tls(), ServerTls = r.Tls() };
        if (!r.Bool())
        {
            return flow;
        }

        // A message is at least six bytes: two booleans, the opcode, the offset's presence, a length and a length.
        var messages = new FlowWebSocketMessage[r.Count(6)];
        for (var i = 0; i < messages.Length; i++)
        {
            messages[i] = new FlowWebSocketMessage(r.Bool(), (WebSocketOpcode)r.Int(), r.Double() ?? 0, r.Bytes(), r.Long(), r.Bool());
        }

        var webSocket = new FlowWebSocket { Messages = messages, DroppedMessages = r.Long() };
        var hasCloseCode = r.Bool();
        var closeCode = r.Int();
        webSocket = webSocket with
        {
            CloseCode = hasCloseCode ? closeCode : null,
            CloseReason = r.String(),
            ClosedByClient = r.Byte() switch { 0 => null, 1 => false, _ => true },
            ParseError = r.String(),
        };
        return flow with { WebSocket = webSocket };
    }

    private ref struct Writer(ArrayBufferWriter<byte> output)
    {
        /// <summary>The longest variable-length integer: 10 bytes of 7 bits for 64 bits.</summary>
        private const int MaxVarIntBytes = 10;

        public readonly void Byte(byte value)
        {
            output.GetSpan(1)[0] = value;
            output.Advance(1);
        }

        public readonly void Bool(bool value) => Byte(value ? (byte)1 : (byte)0);

        public readonly void Int(int value) => Long(value);

        /// <summary>Zig-zag, then 7 bits a byte (as protobuf's sint64): small magnitudes of either sign take one byte.</summary>
        public readonly void Long(long value) => output.Advance(WriteVarInt(output.GetSpan(MaxVarIntBytes), value));

        private static ulong ZigZag(long value) => (ulong)((value << 1) ^ (value >> 63));

        /// <summary>Writes <paramref name="value"/> at the start of <paramref name="span"/>; returns the bytes written.</summary>
        private static int WriteVarInt(Span<byte> span, long value)
        {
            var v = ZigZag(value);
            var i = 0;
            while (v >= 0x80)
            {
                span[i++] = (byte)(v | 0x80);
                v >>= 7;
            }

            span[i++] = (byte)v;
            return i;
        }

        public readonly void Double(double? value)
        {
            Bool(value is not null);
            if (value is { } v)
            {
                BinaryPrimitives.WriteDoubleLittleEndian(output.GetSpan(sizeof(double)), v);
                output.Advance(sizeof(double));
            }
        }

        public readonly void Guid(Guid value)
        {
            value.TryWriteBytes(output.GetSpan(16));
            output.Advance(16);
        }

        public readonly void Time(DateTimeOffset value)
        {
            Long(value.UtcTicks);
            Long(value.Offset.Ticks / TimeSpan.TicksPerMinute);
        }

        /// <summary>Length + 1 (0 for null), then UTF-8.</summary>
        public readonly void String(string? value)
        {
            if (value is null)
            {
                Long(0);
                return;
            }

            // One pass over the text: encoded after room for the longest length prefix it could need, then the prefix
            // written in front and the bytes moved up to it when it came out shorter (short strings, nearly all of
            // them, need no move). Counting the bytes first and encoding them second was two passes for every string.
            var most = Encoding.UTF8.GetMaxByteCount(value.Length);
            var room = VarIntBytes(most + 1L);
            var span = output.GetSpan(room + most);
            var length = Encoding.UTF8.GetBytes(value, span[room..]);
            var prefix = VarIntBytes(length + 1L);
            if (prefix < room)
            {
                span.Slice(room, length).CopyTo(span[prefix..]);
            }

            WriteVarInt(span, length + 1L);
            output.Advance(prefix + length);
        }

        /// <summary>How many bytes <see cref="Long"/> writes for <paramref name="value"/>.</summary>
        private static int VarIntBytes(long value)
        {
            var v = ZigZag(value);
            var bytes = 1;
            while (v >= 0x80)
            {
                v >>= 7;
                bytes++;
            }

            return bytes;
        }

        public readonly void Bytes(ReadOnlySpan<byte> value)
        {
            Long(value.Length);
            value.CopyTo(output.GetSpan(value.Length));
            output.Advance(value.Length);
        }

        public readonly void Endpoint(FlowEndpoint? endpoint)
        {
            Bool(endpoint is not null);
            if (endpoint is not null)
            {
                String(endpoint.Host);
                Int(endpoint.Port);
            }
        }

        public readonly void Headers(HttpHeaders headers)
        {
            Int(headers.Count);
            foreach (var header in headers)
            {
                String(header.Name);
                String(header.Value);
            }
        }

        /// <summary>A body's SHA-256 as its 32 bytes when it is held so or as lower-case hex; anything else as text.</summary>
        public readonly void Hash(FlowBody body)
        {
            var raw = output.GetSpan(1 + Sha256Bytes);
            if (body.TryCopyDigest(raw[1..(1 + Sha256Bytes)]))
            {
                raw[0] = HashRaw;
                output.Advance(1 + Sha256Bytes);
                return;
            }

            var sha256 = body.Sha256;
            if (sha256 is null)
            {
                Byte(HashNone);
                return;
            }

            // Only lower-case hex goes raw (it is what reads back): checked on the text, no string made per body.
            if (sha256.Length == 2 * Sha256Bytes && !sha256.AsSpan().ContainsAnyExcept(LowerHex)
                && Convert.FromHexString(sha256, raw[1..(1 + Sha256Bytes)], out _, out var written) == System.Buffers.OperationStatus.Done
                && written == Sha256Bytes)
            {
                raw[0] = HashRaw;
                output.Advance(1 + Sha256Bytes);
                return;
            }

            Byte(HashText);
            String(sha256);
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> record)
    {
        private readonly ReadOnlySpan<byte> _record = record;
        private int _at;

        public byte Byte() => _at < _record.Length ? _record[_at++] : throw Truncated();

        public bool Bool() => Byte() != 0;

        public int Int()
        {
            var value = Long();
            return value is >= int.MinValue and <= int.MaxValue ? (int)value : throw new InvalidDataException($"flow record: {value} is out of range for a 32-bit integer");
        }

        /// <summary>A count of items, each of which takes at least <paramref name="minBytesEach"/> bytes of the record:
        /// a damaged count is refused before anything is allocated for it.</summary>
        public int Count(int minBytesEach)
        {
            var count = Int();
            return count >= 0 && count <= (_record.Length - _at) / minBytesEach ? count : throw new InvalidDataException($"flow record: a count of {count} items in {_record.Length - _at} bytes");
        }

        public long Long()
        {
            ulong v = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = Byte();
                v |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80)
                {
                    return (long)(v >> 1) ^ -(long)(v & 1);
                }
            }

            throw new InvalidDataException("flow record: an integer longer than 64 bits");
        }

        public double? Double()
        {
            if (!Bool())
            {
                return null;
            }

            var value = BinaryPrimitives.ReadDoubleLittleEndian(Take(sizeof(double)));
            return value;
        }

        public Guid Guid() => new(Take(16));

        public DateTimeOffset Time()
        {
            var utcTicks = Long();
            var minutes = Long();

            // DateTimeOffset's own limits: an offset of at most 14 hours either way, a local time within its range.
            if (minutes is < -MaxOffsetMinutes or > MaxOffsetMinutes || utcTicks < DateTimeOffset.MinValue.UtcTicks || utcTicks > DateTimeOffset.MaxValue.UtcTicks)
            {
                throw new InvalidDataException("flow record: a time out of range");
            }

            var offset = TimeSpan.FromMinutes(minutes);
            var local = utcTicks + offset.Ticks;
            return local >= DateTimeOffset.MinValue.UtcTicks && local <= DateTimeOffset.MaxValue.UtcTicks
                ? new DateTimeOffset(local, offset)
                : throw new InvalidDataException("flow record: a time out of range");
        }

        public string? String()
        {
            var length = Long();
            return length == 0 ? null
                : length is > 0 and <= int.MaxValue ? Encoding.UTF8.GetString(Take((int)(length - 1)))
                : throw Truncated();
        }

        /// <summary>A string the flow model requires (a request's method, host, ...): null there is a damaged record, which
        /// would otherwise come back as a flow whose non-nullable members are null.</summary>
        /// <param name="absence">What is missing, for the message: "a request without a method".</param>
        public string Required(string absence) => String() ?? throw new InvalidDataException("flow record: " + absence);

        public byte[] Bytes() => Take(Int()).ToArray();

        public FlowEndpoint? Endpoint() => Bool() ? new FlowEndpoint(Required("an endpoint without a host"), Int()) : null;

        public HttpHeaders Headers()
        {
            // A field is two strings, a byte each at least.
            var count = Count(2);
            var headers = new HttpHeaders(count);
            for (var i = 0; i < count; i++)
            {
                var name = String() ?? throw new InvalidDataException("flow record: a header field without a name");
                try
                {
                    headers.Add(name, String() ?? throw new InvalidDataException("flow record: a header field without a value"));
                }
                catch (ArgumentException ex)
                {
                    throw new InvalidDataException("flow record: " + ex.Message, ex);
                }
            }

            return headers;
        }

        public Dictionary<string, string>? Tags()
        {
            // A tag is two strings, a byte each at least.
            var count = Count(2);
            if (count == 0)
            {
                return null;
            }

            var tags = new Dictionary<string, string>(count, StringComparer.Ordinal);
            for (var i = 0; i < count; i++)
            {
                tags[Required("a tag without a name")] = Required("a tag without a value");
            }

            return tags;
        }

        public FlowBody Body()
        {
            var length = Long();
            switch (Byte())
            {
                case HashNone:
                    return new FlowBody(ReadOnlyMemory<byte>.Empty, length, sha256: null);
                case HashRaw:
                    // Kept as bytes: the hex text is made only if someone reads it.
                    var digest = Take(Sha256Bytes);
                    return length == 0 && digest.SequenceEqual(EmptyDigest) ? FlowBody.Empty : FlowBody.WithDigest(ReadOnlyMemory<byte>.Empty, length, digest);
                default:
                    var sha256 = String();
                    return length == 0 && sha256 == FlowBody.Empty.Sha256 ? FlowBody.Empty : new FlowBody(ReadOnlyMemory<byte>.Empty, length, sha256);
            }
        }

        public FlowTls? Tls() => Bool() ? new FlowTls(String(), String(), String(), String()) : null;

        private ReadOnlySpan<byte> Take(int length)
        {
            if (length < 0 || _record.Length - _at < length)
            {
                throw Truncated();
            }

            var span = _record.Slice(_at, length);
            _at += length;
            return span;
        }

        private static InvalidDataException Truncated() => new("flow record: truncated");
    }
}
