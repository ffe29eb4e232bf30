using System.Buffers;
using System.Text;
using Interpose.Core.Http;

namespace Interpose.Core.Tests.Corpus;

/// <summary>
/// Feeds a message to the codec the way a pipe would: bytes arrive in chunks (each its own segment), the parser
/// sees everything received and not yet consumed, and the driver advances by what the parser consumed.
/// </summary>
public sealed class Http1MessageDriver
{
    private readonly List<byte[]> _pending = [];
    private readonly Queue<byte[]> _incoming;
    private readonly bool _resumeScan;
    private int _startOffsetInFirst;

    private Http1MessageDriver(IEnumerable<byte[]> chunks, bool resumeScan)
    {
        _incoming = new Queue<byte[]>(chunks);
        _resumeScan = resumeScan;
    }

    /// <summary>The parse result: the head serialized back to bytes, the decoded body, the trailers, and leftover bytes.</summary>
    public sealed record Result(string Head, string Body, string Trailers, int Leftover);

    /// <summary>Parses a request fed as <paramref name="chunks"/>; with <paramref name="resumeScan"/> an <see cref="Http1HeadScan"/>
    /// is kept between attempts (the engine's mode) instead of parsing afresh each time.</summary>
    public static Result ParseRequest(IEnumerable<byte[]> chunks, Http1Limits? limits = null, bool resumeScan = false) =>
        new Http1MessageDriver(chunks, resumeScan).Run(isRequest: true, limits ?? Http1Limits.Default);

    public static Result ParseResponse(IEnumerable<byte[]> chunks, Http1Limits? limits = null, bool resumeScan = false) =>
        new Http1MessageDriver(chunks, resumeScan).Run(isRequest: false, limits ?? Http1Limits.Default);

    /// <summary>Splits <paramref name="message"/> at the given offsets.</summary>
    public static IEnumerable<byte[]> Split(byte[] message, params int[] points)
    {
        int previous = 0;
        foreach (int p in points)
        {
            yield return message[previous..p];
            previous = p;
        }

        yield return message[previous..];
    }

    public static IEnumerable<byte[]> OneByteAtATime(byte[] message)
    {
        foreach (byte b in message)
        {
            yield return [b];
        }
    }

    private Result Run(bool isRequest, Http1Limits limits)
    {
        var writer = new ArrayBufferWriter<byte>();
        BodyFraming framing;
        Http1HeadScan scan = default;
        while (true)
        {
            ReadOnlySequence<byte> buffer = Current();
            if (!_resumeScan)
            {
                scan.Reset();
            }

            if (isRequest)
            {
                if (Http1Parser.TryParseRequestHead(buffer, limits, ref scan, out HttpRequestHead? request, out SequencePosition consumed))
                {
                    Http1Parser.WriteRequestHead(request, writer);
                    framing = MessageFraming.ForRequest(request);
                    Advance(buffer, consumed);
                    break;
                }

                Assert.Equal(buffer.Start, consumed);
            }
            else
            {
                if (Http1Parser.TryParseResponseHead(buffer, limits, ref scan, out HttpResponseHead? response, out SequencePosition consumed))
                {
                    Http1Parser.WriteResponseHead(response, writer);
                    framing = MessageFraming.ForResponse(response, "GET");
                    Advance(buffer, consumed);
                    break;
                }

                Assert.Equal(buffer.Start, consumed);
            }

            Receive();
        }

        var body = new List<byte>();
        string trailers = string.Empty;
        switch (framing.Kind)
        {
            case BodyKind.ContentLength:
                while (body.Count < framing.ContentLength)
                {
                    ReadOnlySequence<byte> buffer = Current();
                    long take = Math.Min(buffer.Length, framing.ContentLength - body.Count);
                    body.AddRange(buffer.Slice(0, take).ToArray());
                    Advance(buffer, buffer.GetPosition(take));
                    if (body.Count < framing.ContentLength)
                    {
                        Receive();
                    }
                }

                break;
            case BodyKind.Chunked:
                var decoder = new ChunkedDecoder(limits);
                while (true)
                {
                    ReadOnlySequence<byte> buffer = Current();
                    ChunkedReadResult result = decoder.Read(buffer, out SequencePosition consumed, out ReadOnlySequence<byte> data);
                    Advance(buffer, consumed);
                    if (result == ChunkedReadResult.Data)
                    {
                        Assert.False(data.IsEmpty);
                        body.AddRange(data.ToArray());
                    }
                    else if (result == ChunkedReadResult.Completed)
                    {
                        Assert.NotNull(decoder.Trailers);
                        var sb = new StringBuilder();
                        foreach (HttpHeader h in decoder.Trailers)
                        {
                            sb.Append(h.Name).Append('=').Append(h.Value).Append('\n');
                        }

                        trailers = sb.ToString();
                        break;
                    }
                    else
                    {
                        Assert.True(data.IsEmpty);
                        Receive();
                    }
                }

                break;
            case BodyKind.CloseDelimited:
                while (true)
                {
                    ReadOnlySequence<byte> buffer = Current();
                    body.AddRange(buffer.ToArray());
                    Advance(buffer, buffer.End);
                    if (_incoming.Count == 0)
                    {
                        break;
                    }

                    Receive();
                }

                break;
            default:
                break;
        }

        while (_incoming.Count > 0)
        {
            Receive();
        }

        return new Result(Encoding.Latin1.GetString(writer.WrittenSpan), Encoding.Latin1.GetString([.. body]), trailers, (int)Current().Length);
    }

    private void Receive()
    {
        if (!_incoming.TryDequeue(out byte[]? chunk))
        {
            throw new InvalidOperationException("The parser asked for more data after the whole message was fed.");
        }

        if (chunk.Length > 0)
        {
            _pending.Add(chunk);
        }
    }

    private ReadOnlySequence<byte> Current()
    {
        if (_pending.Count == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var segments = new byte[_pending.Count][];
        segments[0] = _pending[0][_startOffsetInFirst..];
        for (int i = 1; i < _pending.Count; i++)
        {
            segments[i] = _pending[i];
        }

        return SegmentedSequence.Create(segments);
    }

    private void Advance(ReadOnlySequence<byte> buffer, SequencePosition consumed)
    {
        long count = buffer.Slice(buffer.Start, consumed).Length;
        while (count > 0 && _pending.Count > 0)
        {
            int left = _pending[0].Length - _startOffsetInFirst;
            if (count >= left)
            {
                count -= left;
                _pending.RemoveAt(0);
                _startOffsetInFirst = 0;
            }
            else
            {
                _startOffsetInFirst += (int)count;
                count = 0;
            }
        }
    }
}
