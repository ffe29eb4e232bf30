using System.Buffers;
using System.IO.Pipelines;
using Interpose.Core.Http;
using Interpose.Core.Http2;

namespace Interpose.Proxy.Internal;

/// <summary>
/// <c>Upgrade: h2c</c> (RFC 7540 §3.2) inside a plain CONNECT tunnel: a valid upgrade request is answered 101 and the
/// connection goes on as an <see cref="Http2ServerConnection"/> whose stream 1 is that request.
/// </summary>
/// <remarks>
/// <code>
///  request head ─► asks for h2c? ─► plain tunnel, Http2 option, origin-form, no Expect ─► HTTP2-Settings valid?
///    ─► whole body buffered (≤ H2cUpgrade.MaxBodyBytes, nothing consumed until then) ─► 101 ─► HTTP/2, stream 1
///  any "no" ─► the request is served in HTTP/1.1 as any other (Upgrade and HTTP2-Settings removed as hop-by-hop)
/// </code>
/// NOTE: absolute-form requests to the proxy itself are not upgraded: every later HTTP/2 stream would need the proxy's
/// admission and authentication, which the front end does on HTTP/1.1 heads only (as for h2c prior knowledge).
/// TLS connections never upgrade: there HTTP/2 is negotiated by ALPN (RFC 7540 §3.3).
/// </remarks>
internal sealed partial class Http1ServerConnection
{
    private static readonly byte[] SwitchingToH2c = H2cUpgrade.SwitchingProtocols.ToArray();

    /// <summary>Upgrades the connection to HTTP/2 when <paramref name="head"/> asks for h2c and may have it; serves the
    /// HTTP/2 connection to its end. False when declined: nothing was consumed, the request is served in HTTP/1.1.</summary>
    private async ValueTask<bool> TryUpgradeToH2cAsync(HttpRequestHead head)
    {
        if (_tunnel is not { Scheme: "http" } tunnel || !_rt.Options.Http2 || !H2cUpgrade.IsRequested(head))
        {
            return false;
        }

        if (head.Target.Length == 0 || (head.Target[0] != '/' && head.Target != "*"))
        {
            return Decline("the target is not in origin-form");
        }

        // RFC 9110 §10.1.1: a client that sent Expect: 100-continue waits for the 100 before its body; the body must be
        // whole before the switch (RFC 7540 §3.2), so such a request keeps the HTTP/1.1 path, which handles Expect.
        if (head.Headers.Contains("Expect"))
        {
            return Decline("Expect with an upgrade");
        }

        if (!H2cUpgrade.TryReadSettings(head.Headers, out var settings, out var problem))
        {
            // RFC 7540 §3.2.1: "A server MUST NOT upgrade the connection to HTTP/2 if this header field is not present
            // or if more than one is present."
            return Decline(problem!);
        }

        BodyFraming framing;
        try
        {
            framing = MessageFraming.ForRequest(head);
        }
        catch (HttpProtocolException)
        {
            // The HTTP/1.1 path answers the bad framing.
            return false;
        }

        if (framing.Kind == BodyKind.ContentLength && framing.ContentLength > H2cUpgrade.MaxBodyBytes)
        {
            return Decline("the request body is larger than " + H2cUpgrade.MaxBodyBytes + " bytes");
        }

        var body = await BufferUpgradeBodyAsync(framing);
        if (body is not { } whole)
        {
            return Decline("the request body is larger than " + H2cUpgrade.MaxBodyBytes + " bytes, has trailer fields or bad framing, or was not complete in time");
        }

        Http2RequestFields request;
        try
        {
            request = H2cUpgrade.ToStreamOne(head, framing.Kind == BodyKind.Chunked, whole.Body.Length);
        }
        catch (Exception ex) when (ex is Http2StreamException or ArgumentException)
        {
            return Decline(ex.Message);
        }

        // RFC 7540 §3.2: "The HTTP/1.1 request that is sent prior to upgrade ... MUST be sent in their entirety before
        // the client can send HTTP/2 frames": the body buffered above is consumed only now that the upgrade is certain.
        if (whole.Sent > 0)
        {
            var buffered = await _client.Input.ReadAsync(_rt.Aborted);
            _client.Input.AdvanceTo(buffered.Buffer.GetPosition(whole.Sent));
        }

        _responseStarted = true;
        await _client.Stream.WriteAsync(SwitchingToH2c, _rt.Aborted);
        ProxyLog.H2cUpgraded(_rt.Logger, Info, settings.Length, whole.Body.Length);
        await using var h2 = new Http2ServerConnection(_flow, tunnel);
        await h2.ServeAsync(new H2cUpgradeRequest(request, settings, whole.Body));
        return true;

        bool Decline(string reason)
        {
            ProxyLog.H2cUpgradeDeclined(_rt.Logger, Info, reason);
            return false;
        }
    }

    /// <summary>
    /// Waits until the request's whole body is buffered in the client's input, consuming nothing; returns it decoded
    /// with its length as sent, or null (the input left as it was) when it would exceed
    /// <see cref="H2cUpgrade.MaxBodyBytes"/> as sent, its chunked framing is malformed or has trailers, the client
    /// closed, or it is not complete within the request-head timeout.
    /// </summary>
    private async ValueTask<(byte[] Body, long Sent)?> BufferUpgradeBodyAsync(BodyFraming framing)
    {
        if (framing.Kind == BodyKind.None || (framing.Kind == BodyKind.ContentLength && framing.ContentLength == 0))
        {
            return ([], 0);
        }

        var input = _client.Input;
        using var scope = new TimeoutScope(_rt.Time, _rt.Options.Timeouts.RequestHead, _rt.Aborted);
        var decoder = framing.Kind == BodyKind.Chunked ? new ChunkedDecoder(_rt.Options.Limits) : null;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(scope.Token);
            }
            catch (OperationCanceledException) when (scope.TimedOut)
            {
                return null;
            }

            var buffer = result.Buffer;
            var refused = false;
            var whole = decoder is null ? TakeLength(buffer, framing.ContentLength) : TakeChunked(buffer, decoder, out refused);
            if (whole is not null || refused || result.IsCompleted || buffer.Length > H2cUpgrade.MaxBodyBytes)
            {
                // Left unconsumed: the caller advances past the body only once the upgrade is certain.
                input.AdvanceTo(buffer.Start);
                return whole;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static (byte[] Body, long Sent)? TakeLength(ReadOnlySequence<byte> buffer, long length) =>
        buffer.Length < length ? null : (buffer.Slice(0, length).ToArray(), length);

    /// <summary>The whole chunked body decoded from the start of <paramref name="buffer"/> (no more than
    /// <see cref="H2cUpgrade.MaxBodyBytes"/> of it), or null when it is not all there yet, or (<paramref name="refused"/>)
    /// never will be: malformed, or with trailer fields.</summary>
    private static (byte[] Body, long Sent)? TakeChunked(ReadOnlySequence<byte> buffer, ChunkedDecoder decoder, out bool refused)
    {
        refused = false;
        // Decoded from the start on every read: the input is at most 64 KiB, and nothing is consumed until the upgrade.
        decoder.Reset();
        var window = buffer.Slice(0, Math.Min(buffer.Length, H2cUpgrade.MaxBodyBytes));
        var body = new ArrayBufferWriter<byte>();
        var rest = window;
        try
        {
            while (true)
            {
                switch (decoder.Read(rest, out var consumed, out var data))
                {
                    case ChunkedReadResult.Data:
                        foreach (var segment in data)
                        {
                            body.Write(segment.Span);
                        }

                        rest = rest.Slice(consumed);
                        break;
                    case ChunkedReadResult.Completed:
                        // Trailer fields cannot follow a body that stream 1 carries with a Content-Length.
                        refused = decoder.Trailers is { Count: > 0 };
                        return refused ? null : (body.WrittenSpan.ToArray(), buffer.Slice(buffer.Start, consumed).Length);
                    default:
                        return null;
                }
            }
        }
        catch (HttpProtocolException)
        {
            // The HTTP/1.1 path answers the malformed framing.
            refused = true;
            return null;
        }
    }
}
