using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The client's side of one exchange, as the <see cref="ExchangePipeline"/> sees it: where the request body comes
/// from and where the response goes. <see cref="Http1ServerConnection"/> renders it as HTTP/1.1 bytes on the client
/// connection; an HTTP/2 server connection will render it as one stream's frames.
/// </summary>
internal interface IClientSide
{
    ClientConnection Info { get; }

    /// <summary>Whether any byte of a response went to the client (afterwards an error can only end the stream or close).</summary>
    bool ResponseStarted { get; }

    /// <summary>The step the exchange is at, for the error it may end with (per connection for HTTP/1.1, per stream for HTTP/2).</summary>
    ExchangePhase Phase { get; set; }

    /// <summary>Tells a client that sent <c>Expect: 100-continue</c> to go on (RFC 9110 §10.1.1).</summary>
    ValueTask SendContinueAsync(CancellationToken cancellationToken);

    /// <summary>Relays the request body, as it arrives, into <paramref name="sink"/>; returns its length.</summary>
    /// <param name="framing">The body's framing as received.</param>
    /// <param name="sink">Where the bytes go.</param>
    /// <param name="raw">Chunked framing goes to the sink as received (else decoded data and trailers).</param>
    /// <param name="destination">The transport the sink writes to, if any (for segment holding).</param>
    /// <param name="request">Whose observers see the body and who gets its trailers.</param>
    /// <param name="cancellationToken">Cancels the relay.</param>
    /// <exception cref="IOException">The client closed before the body was complete.</exception>
    /// <exception cref="HttpProtocolException">The body's framing is malformed.</exception>
    /// <exception cref="MinDataRateException">The client sent it below the minimum rate (logged and counted).</exception>
    ValueTask<long> ReadRequestBodyAsync(BodyFraming framing, IBodySink sink, bool raw, Transport? destination, HttpRequest request, CancellationToken cancellationToken);

    /// <summary>Reads and discards a request body nobody will read, up to a limit; false when the connection must close.</summary>
    /// <exception cref="MinDataRateException">The client sent the body below the minimum rate.</exception>
    ValueTask<bool> DrainRequestBodyAsync(BodyFraming framing, HttpRequest request, CancellationToken cancellationToken);

    /// <summary>Relays an interim (1xx) response.</summary>
    ValueTask SendInterimAsync(HttpResponseHead head, CancellationToken cancellationToken);

    /// <summary>Sends a response whose body is in memory (synthetic, buffered or replaced); returns the body bytes sent.</summary>
    /// <exception cref="MinDataRateException">The client read it below the minimum rate.</exception>
    ValueTask<long> SendWholeResponseAsync(HttpResponse response, HttpRequest request, bool keepAlive, CancellationToken cancellationToken);

    /// <summary>Sends the response head, then relays the origin's body as it arrives; returns the body bytes and whether the client connection stays open.</summary>
    /// <exception cref="MinDataRateException">The client read it below the minimum rate.</exception>
    ValueTask<(long Bytes, bool KeepAlive)> StreamResponseAsync(UpstreamConnection upstream, HttpRequest request, HttpResponse response, BodyFraming framing, bool keepAlive, CancellationToken cancellationToken);

    /// <summary>Relays an accepted upgrade (101): the head, then bytes both ways until both sides close; <c>tap</c>, when
    /// given, sees the relayed bytes (the WebSocket message reader).</summary>
    ValueTask<(long Up, long Down)> RelayUpgradeAsync(HttpResponseHead head, UpstreamConnection upstream, IRelayTap? tap, CancellationToken cancellationToken);

    /// <summary>A clear answer instead of a silent close: status and a one-line reason; the connection closes after it.</summary>
    ValueTask SendErrorAsync(int status, string message);
}
