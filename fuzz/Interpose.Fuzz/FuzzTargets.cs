using System.Buffers;
using Interpose.Core.Http;
using Interpose.Core.Http2;
using Interpose.Core.Http2.Hpack;
using Interpose.Core.Tls;

namespace Interpose.Fuzz;

/// <summary>
/// The fuzz targets: the parsers that read bytes an attacker controls (client request heads and bodies, origin
/// responses, TLS ClientHellos, HTTP/2 frames and HPACK blocks). Each must return, or throw
/// <see cref="HttpProtocolException"/> (HTTP/2: <see cref="Http2ConnectionException"/> or
/// <see cref="Http2StreamException"/>); anything else
/// (an index out of range, an overflow, a null dereference, a hang) is a bug.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Target names for <c>--target</c>, each with its corpus folder under <c>fuzz/corpus</c>.</summary>
    public static IReadOnlyDictionary<string, Action<ReadOnlyMemory<byte>>> All { get; } = new Dictionary<string, Action<ReadOnlyMemory<byte>>>
    {
        ["http-request"] = RequestHead,
        ["http-response"] = ResponseHead,
        ["chunked"] = Chunked,
        ["client-hello"] = ClientHello,
        ["h2-frames"] = Http2Frames,
        ["hpack"] = HpackBlock,
    };

    /// <summary>Request head parsing, whole and split in two at a point the input chooses (its first byte).</summary>
    public static void RequestHead(ReadOnlyMemory<byte> input)
    {
        foreach (var sequence in Shapes(input))
        {
            try
            {
                if (Http1Parser.TryParseRequestHead(sequence, Http1Limits.Default, out var head, out _))
                {
                    // Framing is decided from the parsed head: it is part of the attack surface too.
                    MessageFraming.ForRequest(head);
                    RequestTargetParser.Parse(head.Method, head.Target);
                }
            }
            catch (HttpProtocolException)
            {
                // A rejection is a correct answer.
            }
        }
    }

    /// <summary>Response head parsing and framing (as the answer to a GET).</summary>
    public static void ResponseHead(ReadOnlyMemory<byte> input)
    {
        foreach (var sequence in Shapes(input))
        {
            try
            {
                if (Http1Parser.TryParseResponseHead(sequence, Http1Limits.Default, out var head, out _))
                {
                    MessageFraming.ForResponse(head, "GET");
                }
            }
            catch (HttpProtocolException)
            {
            }
        }
    }

    /// <summary>A chunked body decoded as the proxy does: repeatedly, consuming what the decoder consumed.</summary>
    public static void Chunked(ReadOnlyMemory<byte> input)
    {
        foreach (var whole in Shapes(input))
        {
            var decoder = new ChunkedDecoder(Http1Limits.Default);
            var rest = whole;
            try
            {
                // Each step consumes at least one byte or stops, so this ends within input.Length + 1 steps.
                for (var step = 0; step <= input.Length + 1; step++)
                {
                    var result = decoder.Read(rest, out var consumed, out _);
                    var before = rest.Length;
                    rest = rest.Slice(consumed);
                    if (result == ChunkedReadResult.Completed || (result == ChunkedReadResult.NeedMoreData && rest.Length == before))
                    {
                        break;
                    }
                }
            }
            catch (HttpProtocolException)
            {
            }
        }
    }

    /// <summary>ClientHello reading: it never throws, whatever the bytes.</summary>
    public static void ClientHello(ReadOnlyMemory<byte> input)
    {
        foreach (var sequence in Shapes(input))
        {
            ClientHelloReader.TryRead(sequence, out _);
        }
    }

    /// <summary>An HTTP/2 connection's inbound side: frames read one after another, field block sequencing, SETTINGS
    /// applied, header blocks decoded and validated as requests. A stream error skips the frame, as the connection would.</summary>
    public static void Http2Frames(ReadOnlyMemory<byte> input)
    {
        foreach (var sequence in Shapes(input))
        {
            var buffer = sequence;
            var tracker = new Http2HeaderBlockTracker();
            var decoder = new HpackDecoder();
            var settings = new Http2Settings();
            var fields = new FieldList();
            try
            {
                while (true)
                {
                    Http2Frame frame;
                    try
                    {
                        if (!Http2FrameReader.TryReadFrame(ref buffer, Http2Limits.MaxFrameSize, out frame))
                        {
                            break;
                        }
                    }
                    catch (Http2StreamException)
                    {
                        continue;
                    }

                    bool endOfBlock = tracker.OnFrame(frame);
                    switch (frame.Type)
                    {
                        case FrameType.Settings:
                            settings.Apply(frame);
                            break;
                        case FrameType.Headers or FrameType.Continuation:
                            decoder.Decode(frame.Payload, frame.EndHeaders, fields);
                            if (endOfBlock)
                            {
                                ValidateQuietly(fields.Items, frame.StreamId);
                                fields.Items.Clear();
                            }

                            break;
                    }
                }
            }
            catch (Http2ConnectionException)
            {
                // GOAWAY is a correct answer.
            }
        }
    }

    /// <summary>One HPACK block decoded (whole and split), with a small table and list size to reach the eviction and
    /// bomb paths, and its fields validated as a request and as a response.</summary>
    public static void HpackBlock(ReadOnlyMemory<byte> input)
    {
        foreach (var sequence in Shapes(input))
        {
            var decoder = new HpackDecoder(maxHeaderTableSize: 256, maxHeaderListSize: 4096, maxFieldCount: 50);
            var fields = new FieldList();
            try
            {
                decoder.Decode(sequence, endHeaders: true, fields);
                ValidateQuietly(fields.Items, 1);
                fields.Items.Clear();

                // The same bytes again: now against the table the first pass left behind.
                decoder.Decode(sequence, endHeaders: true, fields);
            }
            catch (Http2ConnectionException)
            {
            }
        }
    }

    private static void ValidateQuietly(List<HttpHeader> fields, int streamId)
    {
        try
        {
            var request = Http2HeaderRules.ValidateRequest(fields, streamId);
            if (request.Protocol is null)
            {
                Http2HeaderRules.ToHttp1Request(request);
            }
        }
        catch (Http2StreamException)
        {
        }

        try
        {
            Http2HeaderRules.ToHttp1Response(fields, streamId);
        }
        catch (Http2StreamException)
        {
        }
    }

    private sealed class FieldList : IHeaderFieldHandler
    {
        public List<HttpHeader> Items { get; } = [];

        public void OnHeaderField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, bool neverIndexed) =>
            Items.Add(new HttpHeader(System.Text.Encoding.Latin1.GetString(name), System.Text.Encoding.Latin1.GetString(value)));
    }

    /// <summary>The input as one segment, and split in two (split point from the first byte), to reach boundary code.</summary>
    private static IEnumerable<ReadOnlySequence<byte>> Shapes(ReadOnlyMemory<byte> input)
    {
        yield return new ReadOnlySequence<byte>(input);
        if (input.Length >= 2)
        {
            var split = 1 + (input.Span[0] % (input.Length - 1));
            yield return Segments.Create(input[..split], input[split..]);
        }
    }

    private sealed class Segments : ReadOnlySequenceSegment<byte>
    {
        private Segments(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public static ReadOnlySequence<byte> Create(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second)
        {
            var head = new Segments(first, 0);
            var tail = new Segments(second, first.Length);
            head.Next = tail;
            return new ReadOnlySequence<byte>(head, 0, tail, second.Length);
        }
    }
}
