using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;

namespace Interpose.Proxy.Internal;

/// <summary>The outcome of opening an origin connection: the connection, or why it could not be opened.</summary>
internal readonly record struct ConnectResult(UpstreamConnection? Connection, ExchangeError? Error, ServerConnection Server);

/// <summary>
/// Opens connections to origins: resolve, connect, TLS (validated unless told otherwise), each step under its own
/// timeout, each failure reported with its phase. Expected failures are returned as values, not thrown.
/// </summary>
internal sealed class UpstreamConnector(ProxyRuntime runtime)
{
    /// <summary>The offer for an HTTP/2 client's request: h2 first, http/1.1 for origins without it (RFC 9113 §3.2).</summary>
    private static readonly List<SslApplicationProtocol> Http2OrHttp11 = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];

    public async ValueTask<ConnectResult> ConnectAsync(UpstreamKey key, HttpExchange? exchange, CancellationToken cancellationToken)
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
        try
        {
            // 1. Resolve (IP literals skip the resolver).
            IPAddress[] addresses;
            if (IPAddress.TryParse(key.Host, out var literal))
            {
                addresses = [literal];
            }
            else
            {
                addresses = await runtime.ResolveAsync(key.Host, cancellationToken);
                if (addresses.Length == 0)
                {
                    throw new SocketException((int)SocketError.HostNotFound);
                }
            }

            if (exchange is not null)
            {
                exchange.Timings.DnsDone = runtime.Time.GetTimestamp();
            }

            // 2. Connect, trying each address in turn, all under one connect timeout.
            phase = ExchangePhase.Connect;
            timeout = new TimeoutScope(runtime.Time, options.Timeouts.Connect, cancellationToken);
            if (runtime.Dialer is { } dial)
            {
                stream = await dial(key, timeout.Token);
            }
            else
            {
                socket = await ConnectAnyAsync(addresses, key.Port, timeout.Token);
                server.RemoteEndPoint = socket.RemoteEndPoint;
                stream = new NetworkStream(socket, ownsSocket: false);
            }

            if (exchange is not null)
            {
                exchange.Timings.Connected = runtime.Time.GetTimestamp();
            }

            var transport = new Transport(socket, stream);

            // 3. TLS, validated: chain, host name, validity (unless --ssl-insecure).
            if (key.IsTls)
            {
                phase = ExchangePhase.Tls;
                timeout.Reset(options.Timeouts.TlsHandshake);
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

            timeout.Dispose();
            var connection = new UpstreamConnection(key, transport, server, runtime);
            await runtime.Addons.NotifyAsync("ServerConnectedAsync", server, static (a, s, ct) => a.ServerConnectedAsync(s, ct), runtime.Logger, cancellationToken);
            return new ConnectResult(connection, null, server);
        }
        catch (Exception ex) when (ex is SocketException or IOException or AuthenticationException or OperationCanceledException)
        {
            var timedOut = timeout?.TimedOut == true && !cancellationToken.IsCancellationRequested;
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
