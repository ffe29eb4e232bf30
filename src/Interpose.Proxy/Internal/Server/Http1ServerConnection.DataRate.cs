using System.Runtime.CompilerServices;
using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Minimum data rates on the client (<see cref="ProxyTimeouts.MinRequestBodyDataRate"/>,
/// <see cref="ProxyTimeouts.MinResponseDataRate"/>): a client trickling a request body, or reading a response a few
/// bytes at a time, would otherwise hold its connection and an origin connection indefinitely.
/// </summary>
/// <remarks>
/// Who is measured: for the request body, the client, while the proxy waits to read more of it (not while the proxy
/// waits for the origin to take what was read: that back-pressure is the origin's); for the response, the client,
/// while the proxy waits for writes to it to complete (not while the proxy waits for the origin's next bytes).
/// </remarks>
internal sealed partial class Http1ServerConnection
{
    // One re-armed monitor per direction, made on first use: the request body is relayed concurrently with the
    // response, so they cannot share one.
    private DataRateMonitor? _requestBodyRate;
    private DataRateMonitor? _responseRate;

    /// <summary>
    /// Relays the client's request body into <paramref name="sink"/> under the minimum request body rate.
    /// </summary>
    /// <exception cref="MinDataRateException">The client sent below the rate (logged and counted here).</exception>
    /// <exception cref="IOException">The client closed before the body was complete.</exception>
    /// <exception cref="ClientConnectionFailedException">The client's connection failed (a reset).</exception>
    /// <exception cref="HttpProtocolException">The chunked framing is malformed.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<long> RelayRequestBodyAsync(
        HttpRequest request, BodyFraming framing, IBodySink sink, bool raw, Transport? destination, bool fromFirstByte, CancellationToken cancellationToken)
    {
        long bytes;
        if (_rt.Options.Timeouts.MinRequestBodyDataRate is not { } rate)
        {
            bytes = await BodyReader.RelayAsync(_client.Input, framing, _requestDecoder, sink, new BodyRelayOptions(raw, destination, Message: request, FromClient: true), cancellationToken);
            _requestBodyUnread = false;
            return bytes;
        }

        var monitor = _requestBodyRate ??= new DataRateMonitor(_rt.Time, _rt.OpenDataRateMonitors);
        monitor.Start(rate, cancellationToken, fromFirstByte);
        try
        {
            bytes = await BodyReader.RelayAsync(_client.Input, framing, _requestDecoder, sink, new BodyRelayOptions(raw, destination, ReadRate: monitor, Message: request, FromClient: true), monitor.Token);
            _requestBodyUnread = false;
            return bytes;
        }
        catch (OperationCanceledException ex) when (monitor.Violated)
        {
            throw ClientTooSlow(monitor, request, ExchangePhase.ClientRequest, ex);
        }
        finally
        {
            monitor.Stop();
        }
    }

    /// <summary>Starts measuring the response to the client; null (and <paramref name="parent"/> as the token) when off.</summary>
    private DataRateMonitor? StartResponseRate(CancellationToken parent, out CancellationToken token)
    {
        if (_rt.Options.Timeouts.MinResponseDataRate is not { } rate)
        {
            token = parent;
            return null;
        }

        var monitor = _responseRate ??= new DataRateMonitor(_rt.Time, _rt.OpenDataRateMonitors);
        monitor.Start(rate, parent);
        token = monitor.Token;
        return monitor;
    }

    /// <summary>Writes to the client, timing the wait when the write does not complete at once.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteToClientAsync(ReadOnlyMemory<byte> bytes, DataRateMonitor? rate, CancellationToken cancellationToken)
    {
        var write = _client.Stream.WriteAsync(bytes, cancellationToken);
        if (!write.IsCompleted)
        {
            rate?.WaitStarted();
        }

        await write;
        rate?.WaitEnded();
        rate?.Transferred(bytes.Length);
    }

    /// <summary>Logs and counts a client below the rate; returns the failure that ends the exchange.</summary>
    private MinDataRateException ClientTooSlow(DataRateMonitor monitor, HttpRequest request, ExchangePhase phase, OperationCanceledException cancelled) =>
        MinDataRateException.ClientTooSlow(_rt, Info, monitor, request, phase, cancelled);
}
