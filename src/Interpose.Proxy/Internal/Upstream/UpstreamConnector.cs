using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Security.Authentication;

namespace Interpose.Proxy.Internal;

/// <summary>The outcome of opening an origin connection: the connection, or why it could not be opened.</summary>
internal readonly record struct ConnectResult(UpstreamConnection? Connection, ExchangeError? Error, ServerConnection Server);

/// <summary>The outcome of opening a TCP connection: the socket, or the phase it failed in, why, and whether it timed out.</summary>
internal readonly record struct SocketResult(Socket? Socket, ExchangePhase Phase, Exception? Error, bool TimedOut);

/// <summary>
/// Opens connections to origins: resolve, connect, TLS (validated unless told otherwise), each step under its own
/// timeout, each failure reported with its phase. Expected failures are returned as values, not thrown.
/// </summary>
internal sealed class UpstreamConnector(ProxyRuntime runtime)
{
    /// <summary>The offer for an HTTP/2 client's request: h2 first, http/1.1 for origins without it (RFC 9113 §3.2).</summary>
    private static readonly List<SslApplicationProtocol> Http2OrHttp11 = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];

    /// <summary>Opens a connection to <paramref name="key"/>'s origin: resolve, connect, TLS when the key says so.</summary>
    /// <param name="key">Where to, and how.</param>
    /// <param name="exchange">The exchange that waits for it (its timings are recorded); null for one opened ahead.</param>
    /// <param name="cancellationToken">The client left or the proxy is stopping.</param>
    /// <param name="early">The TCP connection to the key's host and port opened ahead (<see cref="EagerSocket"/>), or
    /// null to resolve and connect here.</param>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async ValueTask<ConnectResult> ConnectAsync(UpstreamKey key, HttpExchange? exchange, CancellationToken cancellationToken, Task<SocketResult>? early = null)
    {
        var options = runtime.Options;
        var server = new ServerConnection(runtime.NextServerId(), key.Host, key.Port, key.IsTls, key.Sni);
        if (exchange is not null)
        {
            exchange.Server = server;
        }

        await runtime.Addons.NotifyAsync("ServerConnectingAsync", server, static (a, s, ct) => a.ServerConnectingAsync(s, ct), runtime.Logger, cancellationToken);

        var phase = ExchangePhase.Dns;
        Socket? socket = null;
        Stream? stream = null;
        SslStream? ssl = null;
        TimeoutScope? timeout = null;
        UpstreamCertificateValidator? validator = null;
        var openTimedOut = false;
        try
        {
            if (runtime.Dialer is { } dial)
            {
                // 1. Resolve, 2. the test dialer's stream instead of a TCP connection, under the connect timeout.
                _ = await ResolveAsync(key.Host, cancellationToken);
                if (exchange is not null)
                {
                    exchange.Timings.DnsDone = runtime.Time.GetTimestamp();
                }

                phase = ExchangePhase.Connect;
                timeout = new TimeoutScope(runtime.Time, options.Timeouts.Connect, cancellationToken);
                stream = await dial(key, timeout.Token);
                if (exchange is not null)
                {
                    exchange.Timings.Connected = runtime.Time.GetTimestamp();
                }
            }
            else
            {
                // 1. Resolve and 2. connect, or take the socket opened when the CONNECT arrived (EagerSocket).
                var opened = await (early ?? OpenSocketAsync(key.Host, key.Port, exchange, cancellationToken));
                if (opened.Error is { } failure)
                {
                    phase = opened.Phase;
                    openTimedOut = opened.TimedOut;
                    ExceptionDispatchInfo.Throw(failure);
                }

                socket = opened.Socket!;
                server.RemoteEndPoint = socket.RemoteEndPoint;
                // Until its first response head is in hand, the connection's reads continue on the thread pool (HandOffStream):
                // the TLS handshake's certificate validation is the heaviest step of an origin connection.
                stream = new HandOffStream(new NetworkStream(socket, ownsSocket: false));
            }

            var transport = new Transport(socket, stream);

            // 3. TLS, validated: chain, host name, validity (unless --ssl-insecure).
            if (key.IsTls)
            {
                phase = ExchangePhase.Tls;
                if (timeout is null)
                {
                    timeout = new TimeoutScope(runtime.Time, options.Timeouts.TlsHandshake, cancellationToken);
                }
                else
                {
                    timeout.Reset(options.Timeouts.TlsHandshake);
                }
                validator = new UpstreamCertificateValidator(options.SslInsecure, options.UpstreamTrustedRoots);
                ssl = new SslStream(stream, leaveInnerStreamOpen: true);
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = key.Sni ?? key.Host,
                    EnabledSslProtocols = TlsPolicy.Protocols,
                    CipherSuitesPolicy = TlsPolicy.CipherSuitesFor(options),
                    ApplicationProtocols = key.Protocol == UpstreamProtocol.Http2OrHttp11 ? Http2OrHttp11 : TlsPolicy.ApplicationProtocols,
                    // Revocation needs the network (OCSP/CRL fetches); the proxy makes no connection the client did not ask for.
                    CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
                    CertificateChainPolicy = validator.CreateChainPolicy(),
                    RemoteCertificateValidationCallback = validator.Validate,
                }, timeout.Token);
                runtime.Metrics.TlsHandshake(client: false, ok: true);
                TlsBufferRelease.TryEnable(ssl);
                transport.UseTls(ssl);
                server.TlsVersion = ssl.SslProtocol;
                server.CipherSuite = ssl.NegotiatedCipherSuite;
                server.Alpn = ssl.NegotiatedApplicationProtocol.Protocol.IsEmpty ? null : ssl.NegotiatedApplicationProtocol.ToString();
                server.Certificate = ssl.RemoteCertificate as System.Security.Cryptography.X509Certificates.X509Certificate2;
                if (exchange is not null)
                {
                    exchange.Timings.TlsDone = runtime.Time.GetTimestamp();
                }
            }

            timeout?.Dispose();
            var connection = new UpstreamConnection(key, transport, server, runtime);
            await runtime.Addons.NotifyAsync("ServerConnectedAsync", server, static (a, s, ct) => a.ServerConnectedAsync(s, ct), runtime.Logger, cancellationToken);
            return new ConnectResult(connection, null, server);
        }
        catch (Exception ex) when (ex is SocketException or IOException or AuthenticationException or OperationCanceledException)
        {
            var timedOut = (openTimedOut || timeout?.TimedOut == true) && !cancellationToken.IsCancellationRequested;
            if (ex is OperationCanceledException && !timedOut)
            {
                // The client went away or the proxy is stopping: not an origin failure.
                await DisposeAsync(ssl, stream, socket, timeout);
                throw;
            }

            if (phase == ExchangePhase.Tls)
            {
                runtime.Metrics.TlsHandshake(client: false, ok: false);
            }

            var error = validator?.FailureReason is { } reason
                ? new ExchangeError(ExchangePhase.Tls, reason, IsTransient: false, ex)
                : Failures.Describe(phase, ex, timedOut);
            await DisposeAsync(ssl, stream, socket, timeout);
            await runtime.Addons.NotifyAsync("ServerConnectFailedAsync", (server, error), static (a, s, ct) => a.ServerConnectFailedAsync(s.server, s.error, ct), runtime.Logger, cancellationToken);
            return new ConnectResult(null, error, server);
        }
    }

    /// <summary>
    /// Steps 1 and 2 of <see cref="ConnectAsync"/>: resolves <paramref name="host"/> (IP literals skip the resolver)
    /// and connects to each address in turn, all under one connect timeout. Failures are returned with their phase.
    /// </summary>
    /// <param name="host">A name or an IP literal.</param>
    /// <param name="port">The TCP port.</param>
    /// <param name="exchange">The exchange whose timings record the steps; null for none.</param>
    /// <param name="cancellationToken">Stops the resolve or the connect (the result then carries the cancellation).</param>
    /// <returns>The connected socket, owned by the caller; or the phase, the exception and whether it was the timeout.</returns>
    public async Task<SocketResult> OpenSocketAsync(string host, int port, HttpExchange? exchange, CancellationToken cancellationToken)
    {
        var phase = ExchangePhase.Dns;
        TimeoutScope? timeout = null;
        try
        {
            var addresses = await ResolveAsync(host, cancellationToken);
            if (exchange is not null)
            {
                exchange.Timings.DnsDone = runtime.Time.GetTimestamp();
            }

            phase = ExchangePhase.Connect;
            timeout = new TimeoutScope(runtime.Time, runtime.Options.Timeouts.Connect, cancellationToken);
            var socket = await ConnectAnyAsync(addresses, port, timeout.Token);
            if (exchange is not null)
            {
                exchange.Timings.Connected = runtime.Time.GetTimestamp();
            }

            return new SocketResult(socket, phase, null, TimedOut: false);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return new SocketResult(null, phase, ex, timeout?.TimedOut == true && !cancellationToken.IsCancellationRequested);
        }
        finally
        {
            timeout?.Dispose();
        }
    }

    private async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return [literal];
        }

        var addresses = await runtime.ResolveAsync(host, cancellationToken);
        return addresses.Length > 0 ? addresses : throw new SocketException((int)SocketError.HostNotFound);
    }

    private static async ValueTask<Socket> ConnectAnyAsync(IPAddress[] addresses, int port, CancellationToken cancellationToken)
    {
        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken);
                return socket;
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }

    private static async ValueTask DisposeAsync(SslStream? ssl, Stream? stream, Socket? socket, TimeoutScope? timeout)
    {
        if (ssl is not null)
        {
            await ssl.DisposeAsync();
        }

        if (stream is not null)
        {
            await stream.DisposeAsync();
        }

        socket?.Dispose();
        timeout?.Dispose();
    }
}
