using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.RegularExpressions;
using Interpose.Certificates;
using Interpose.Core;
using Interpose.Core.Flows;
using Interpose.Core.Http;
using Interpose.Core.Http2;
using Interpose.Core.Tls;

namespace Interpose.Proxy.Internal;

/// <summary>
/// The tunnel layer: a CONNECT (RFC 9110 §9.3.6) is answered 200, then the tunnel's first bytes decide what it
/// carries. A TLS ClientHello: intercept (TLS with a forged certificate, then HTTP inside), pass through or reject,
/// as <c>--ignore-hosts</c> and the TlsClientHello hook say; plain HTTP: served inside; anything else, or a server
/// that speaks first: relayed byte for byte.
/// </summary>
/// <remarks>
/// <code>
///  CONNECT ─► 200 ─► sniff first bytes ─┬─ TLS hello ─► hook/ignore ─┬─ intercept: TLS both sides ─► HTTP/1.1 server connection
///                                       │                            └─ passthrough ─► byte relay
///                                       ├─ HTTP ─► HTTP/1.1 server connection (plain, in the tunnel)
///                                       └─ other / nothing (server speaks first) ─► byte relay
/// </code>
/// </remarks>
/// <param name="flow">The client connection; the HTTP/1.1 connection that read the CONNECT is already gone.</param>
internal sealed class TunnelLayer(ClientFlow flow)
{
    private static readonly byte[] ConnectEstablished = "HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray();

    private readonly ClientFlow _flow = flow;
    private readonly ProxyRuntime _rt = flow.Runtime;
    private readonly Transport _client = flow.Client;

    // Eager: the TCP connection to the CONNECT target, opened as the CONNECT arrives, until the origin side takes it.
    private EagerSocket? _eagerSocket;

    // When the CONNECT arrived: a relayed tunnel's start and duration (RelayedTunnel) count from here.
    private DateTimeOffset _startedAt;
    private long _started;

    /// <summary>RFC 9110 §9.3.6: answer 200, then decide what the tunnel carries from its first bytes.</summary>
    /// <remarks>
    /// Not async itself: the CONNECT's head (its header list and strings) is not kept by a state machine for the
    /// tunnel's whole life, which can be hours.
    /// </remarks>
    public Task RunAsync(HttpRequestHead head)
    {
        RequestTarget target;
        try
        {
            target = RequestTargetParser.Parse(head.Method, head.Target);
        }
        catch (HttpProtocolException ex)
        {
            ProxyLog.BadRequest(_rt.Logger, _flow.Info, ex.Message, ex.StatusCode);
            return Http1ServerConnection.SendErrorAsync(_flow, 400, "bad CONNECT target: " + ex.Message).AsTask();
        }

        _flow.Info.ConnectAuthority = head.Target;
        return RunAsync(target.Host!, target.Port);
    }

    private async Task RunAsync(string host, int port)
    {
        _startedAt = _rt.Time.GetUtcNow();
        _started = _rt.Time.GetTimestamp();
        if (_rt.Options.ConnectionStrategy == ConnectionStrategy.Eager && !IsIgnored(host, host, port))
        {
            // The client needs a moment after the 200 to set up its TLS and send the ClientHello; forging the leaf for
            // the CONNECT host (almost always the SNI) and opening the TCP connection to the origin meanwhile take
            // both out of the handshake's time.
            _rt.Leaves.Prefetch(host);
            _eagerSocket = StartEagerSocket(host, port);
        }

        try
        {
            await ServeTunnelAsync(host, port);
        }
        finally
        {
            await ReleaseEagerSocketAsync();
        }
    }

    private async Task ServeTunnelAsync(string host, int port)
    {
        await _client.Stream.WriteAsync(ConnectEstablished, _rt.Aborted);

        var protocol = await SniffAsync();
        if (protocol is null)
        {
            // Nothing from the client within the wait: a server-speaks-first protocol, or only a slow client.
            protocol = await AwaitFirstSpeakerAsync(host, port);
            if (protocol is null)
            {
                return;
            }
        }

        if (protocol is SniffedProtocol.Http)
        {
            // HTTP inside the tunnel connects per request, by its own keys: the socket opened ahead goes unused.
            await ReleaseEagerSocketAsync();
        }

        switch (protocol)
        {
            case SniffedProtocol.Tls:
                // The decision and the client's handshake return before the tunnel is served, so that the ClientHello,
                // the hook's context and their state machines are not kept for the tunnel's whole life (issue 19).
                if (await HandleTlsAsync(host, port) is { } intercepted)
                {
                    await ServeInterceptedAsync(intercepted);
                }

                break;
            case SniffedProtocol.Http when _rt.Options.Http2 && await StartsWithHttp2PrefaceAsync():
                // RFC 9113 §3.3: prior knowledge, the client starts with the preface (the sniffer saw "PRI" as a method).
                await ServeHttp2Async(new TunnelTarget("http", host, port, null));
                break;
            case SniffedProtocol.Http:
                await ServeAsync(new TunnelTarget("http", host, port, null));
                break;
            default:
                // Bytes that are neither TLS nor HTTP: relayed as they are.
                await RelayRawAsync(host, port, "tcp");
                break;
        }
    }

    /// <summary>
    /// Eager: starts opening the TCP connection to the CONNECT target, unless the pool already holds a connection the
    /// tunnel's first request is likely to take (its client's SNI is almost always the CONNECT host) or a test dialer
    /// stands in for TCP.
    /// </summary>
    private EagerSocket? StartEagerSocket(string host, int port)
    {
        if (_rt.Dialer is not null)
        {
            return null;
        }

        var likely = new TunnelTarget("https", host, port, IPAddress.TryParse(host, out _) ? null : host);
        if (_rt.Pool.HasIdle(likely.OriginKey) || _rt.Pool.HasIdle(likely.Http2OriginKey) || _rt.Pool.HasHttp2(likely.Http2OriginKey))
        {
            return null;
        }

        return EagerSocket.Start(_rt, host, port, _rt.Aborted);
    }

    /// <summary>Closes the socket opened ahead if nothing took it, now rather than when the tunnel ends.</summary>
    private async ValueTask ReleaseEagerSocketAsync()
    {
        if (_eagerSocket is { } socket)
        {
            _eagerSocket = null;
            await socket.DisposeAsync();
        }
    }

    /// <summary>
    /// The client said nothing within <see cref="ProxyTimeouts.ServerFirstWait"/>: connect, then let whoever speaks
    /// first decide. The server (an SMTP, FTP or database banner): its bytes are relayed both ways on this connection.
    /// The client (a slow one; a ClientHello after the wait is still a ClientHello): the connection is closed unused
    /// and the client's bytes are sniffed as if they had come in time, so a slow TLS client is still intercepted.
    /// </summary>
    /// <returns>What the client's first bytes are; null when the tunnel was served here (relayed, or the connect failed).</returns>
    private async ValueTask<SniffedProtocol?> AwaitFirstSpeakerAsync(string host, int port)
    {
        var (upstream, connectError) = await ConnectRawAsync(host, port);
        if (upstream is null)
        {
            // Nobody spoke yet, so the tunnel could only have been relayed raw.
            await ReportAsync(NewTunnel(TunnelKind.Raw, host, port), connectError);
            return null;
        }

        var clientInput = _client.Input;
        var serverInput = upstream.Transport.Input;
        var clientRead = clientInput.ReadAsync(_rt.Aborted).AsTask();
        var serverRead = serverInput.ReadAsync(_rt.Aborted).AsTask();
        await Task.WhenAny(clientRead, serverRead);

        // Stop the read that lost (it returns at once, marked cancelled) and put every byte back for the next reader.
        if (!clientRead.IsCompleted)
        {
            clientInput.CancelPendingRead();
        }

        if (!serverRead.IsCompleted)
        {
            serverInput.CancelPendingRead();
        }

        ReadResult client, server;
        try
        {
            server = await serverRead;
        }
        catch (Exception ex) when (ex is IOException or SocketException)
        {
            // The origin reset before either side said a word: nothing to relay.
            await upstream.DisposeAsync();
            _ = await clientRead;
            ProxyLog.UpstreamFailed(_rt.Logger, _flow.Info, host, port, ExchangePhase.Response, "transient", ex.Message);
            var tunnel = NewTunnel(TunnelKind.Raw, host, port);
            tunnel.ServerEndPoint = upstream.Info.RemoteEndPoint;
            await ReportAsync(tunnel, new ExchangeError(ExchangePhase.Response, ex.Message, IsTransient: true, ex));
            return null;
        }

        try
        {
            client = await clientRead;
        }
        catch
        {
            // The client reset, or the proxy is stopping: the session ends with that; the origin connection goes too.
            await upstream.DisposeAsync();
            throw;
        }

        clientInput.AdvanceTo(client.Buffer.Start);
        serverInput.AdvanceTo(server.Buffer.Start);
        if (!server.Buffer.IsEmpty || server.IsCompleted)
        {
            // The server spoke (or closed) first: relay, banner included, on the connection that heard it.
            await RelayRawAsync(host, port, "tcp", upstream);
            return null;
        }

        await upstream.DisposeAsync();
        if (client.Buffer.IsEmpty && client.IsCompleted)
        {
            // The client closed without a word: nothing to relay.
            return null;
        }

        return await SniffAsync() ?? SniffedProtocol.Unknown;
    }

    /// <summary>Looks at the tunnel's first bytes without consuming them.</summary>
    /// <returns>What they are; null when none came within <see cref="ProxyTimeouts.ServerFirstWait"/>.</returns>
    private async ValueTask<SniffedProtocol?> SniffAsync()
    {
        var input = _client.Input;
        var wait = _flow.Deadline;
        wait.Arm(_rt.Options.Timeouts.ServerFirstWait, _rt.Aborted);
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(wait.Token);
                var buffer = result.Buffer;
                var protocol = ProtocolSniffer.Detect(buffer);
                if (protocol != SniffedProtocol.NeedMoreData || result.IsCompleted)
                {
                    input.AdvanceTo(buffer.Start);
                    return protocol == SniffedProtocol.NeedMoreData ? SniffedProtocol.Unknown : protocol;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (OperationCanceledException) when (wait.TimedOut)
        {
            return null;
        }
        finally
        {
            wait.Disarm();
        }
    }

    /// <summary>Whether the tunnel's first bytes are the HTTP/2 client preface (RFC 9113 §3.4); consumes nothing.</summary>
    private async ValueTask<bool> StartsWithHttp2PrefaceAsync()
    {
        var input = _client.Input;
        var wait = _flow.Deadline;
        wait.Arm(_rt.Options.Timeouts.RequestHead, _rt.Aborted);
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(wait.Token);
                var buffer = result.Buffer;
                var match = Http2Preface.Match(buffer.Slice(0, Math.Min(buffer.Length, Http2Preface.Length)).ToArray());
                if (match != PrefaceMatch.Incomplete || result.IsCompleted)
                {
                    input.AdvanceTo(buffer.Start);
                    return match == PrefaceMatch.Complete;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (OperationCanceledException) when (wait.TimedOut)
        {
            // A partial preface that never completes: the HTTP/1.1 server answers it (400) as a malformed head.
            return false;
        }
        finally
        {
            wait.Disarm();
        }
    }

    /// <summary>A TLS ClientHello arrived: intercept, pass through or reject.</summary>
    /// <returns>The tunnel to serve over the client's TLS when it was intercepted and the handshake succeeded; else null (done).</returns>
    private async Task<TunnelTarget?> HandleTlsAsync(string host, int port)
    {
        var input = _client.Input;
        // The connection's one timer (ClientFlow.Deadline): the ClientHello, the hook and the handshake share this bound.
        var scope = _flow.Deadline;
        scope.Arm(_rt.Options.Timeouts.TlsHandshake, _rt.Aborted);
        try
        {
            ClientHello? hello;
            try
            {
                while (true)
                {
                    var result = await input.ReadAsync(scope.Token);
                    var buffer = result.Buffer;
                    var status = ClientHelloReader.TryRead(buffer, out hello);
                    if (status == ClientHelloParseStatus.Incomplete && !result.IsCompleted)
                    {
                        input.AdvanceTo(buffer.Start, buffer.End);
                        continue;
                    }

                    input.AdvanceTo(buffer.Start);
                    if (status != ClientHelloParseStatus.Parsed)
                    {
                        // A TLS handshake record (the sniffer checked its header) whose hello the strict reader refuses:
                        // a server name with a space, a hello over its cap, one cut short. OpenSSL servers accept some of
                        // these, so relaying them raw would let any client choose to skip interception, the hooks (a
                        // Reject among them) and recording. Decided as any hello is, by the CONNECT host; the handshake
                        // may then fail, and is logged as a failed handshake.
                        var reason = status == ClientHelloParseStatus.Incomplete
                            ? "the client stopped sending before its end"
                            : "not a well-formed ClientHello of at most " + ClientHelloReader.MaxClientHelloLength.ToString(CultureInfo.InvariantCulture) + " bytes";
                        ProxyLog.ClientHelloUnparsed(_rt.Logger, _flow.Info, host, port, reason);
                        hello = ClientHello.Unparsed((int)Math.Min(buffer.Length, int.MaxValue));
                    }

                    break;
                }
            }
            catch (OperationCanceledException) when (scope.TimedOut)
            {
                ProxyLog.ClientTlsFailed(_rt.Logger, _flow.Info, host, "no complete ClientHello in time");
                return null;
            }

            _flow.Info.Sni = hello!.ServerName;
            _flow.Info.OfferedAlpn = hello.ApplicationProtocols;
            var serverName = ServerName.WithoutPort(hello.ServerName);
            var certificateHost = serverName ?? host;
            var decision = IsIgnored(certificateHost, host, port) ? TlsDecision.Passthrough : TlsDecision.Intercept;
            var context = new TlsClientHelloContext(_flow.Info, hello, certificateHost, port, decision);
            try
            {
                await _rt.Addons.RunAsync("TlsClientHelloAsync", context, static (a, c, ct) => a.TlsClientHelloAsync(c, ct), scope.Token);
            }
            catch (AddonException ex)
            {
                ProxyLog.AddonHookFailed(_rt.Logger, ex.Addon, ex.Hook, ex.InnerException!);
                return null;
            }
            catch (OperationCanceledException) when (scope.TimedOut)
            {
                // The hooks run under the handshake's deadline, shorter than their own: it is what ended them.
                ProxyLog.ClientHelloHooksTimedOut(_rt.Logger, _flow.Info, certificateHost, _rt.Options.Timeouts.TlsHandshake.TotalSeconds);
                return null;
            }

            switch (context.Decision)
            {
                case TlsDecision.Reject:
                    return null;
                case TlsDecision.Passthrough:
                    scope.Disarm();
                    await RelayRawAsync(host, port, "tls-passthrough");
                    return null;
            }

            // Eager: the origin's TCP and TLS set-up runs while the client's handshake below completes.
            var sni = serverName ?? (IPAddress.TryParse(host, out _) ? null : host);
            var tunnel = new TunnelTarget("https", host, port, sni);
            // A client offering h2 gets it when HTTP/2 is on (TlsPolicy), and its requests offer h2 to the origin.
            var eagerKey = _rt.Options.Http2 && _rt.Options.UpstreamHttp2 && hello.ApplicationProtocols.Contains("h2") ? tunnel.Http2OriginKey : tunnel.OriginKey;
            if (_rt.Options.ConnectionStrategy == ConnectionStrategy.Eager && !_rt.Pool.HasIdle(eagerKey) && !_rt.Pool.HasHttp2(eagerKey))
            {
                _flow.Eager = EagerConnection.Start(_rt, eagerKey, _rt.Aborted, _eagerSocket?.Take(host, port));
            }

            // Not taken (the pool had a connection for the ClientHello's key): closed before the tunnel's long life starts.
            await ReleaseEagerSocketAsync();

            // No request may take it (the client leaves, or goes elsewhere): the flow closes it at the end.
            return await InterceptAsync(context, hello, certificateHost, tunnel, scope) ? tunnel : null;
        }
        finally
        {
            scope.Disarm();
        }
    }

    /// <summary>Completes the client's TLS handshake with a forged (or the hook's) certificate.</summary>
    /// <returns>Whether it succeeded (a failure is counted and logged here).</returns>
    private async Task<bool> InterceptAsync(TlsClientHelloContext context, ClientHello hello, string certificateHost, TunnelTarget tunnel, TimeoutScope scope)
    {
        // Intercept: present a certificate for the name the client asked for, TLS 1.2+ with forward-secret AEAD.
        SslStreamCertificateContext certificate;
        try
        {
            certificate = context.Certificate ?? await _rt.Leaves.GetAsync(certificateHost, scope.Token);
        }
        // A CertificateException is a handshake that cannot succeed: no leaf can be made for the name the client sent (a
        // wildcard, a label over 63 characters: the ClientHello reader takes any printable ASCII), or the CA expired.
        catch (CertificateException ex) when (!_rt.Aborted.IsCancellationRequested)
        {
            _rt.Metrics.TlsHandshake(client: true, ok: false);
            ProxyLog.ClientTlsFailed(_rt.Logger, _flow.Info, certificateHost, ex.Message);
            await RefuseHandshakeAsync(scope);
            return false;
        }

        var ssl = _client.WrapInTls();
        try
        {
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = certificate,
                EnabledSslProtocols = TlsPolicy.Protocols,
                CipherSuitesPolicy = TlsPolicy.CipherSuitesFor(_rt.Options),
                ApplicationProtocols = TlsPolicy.ServerProtocolsFor(hello.ApplicationProtocols, _rt.Options.Http2),
                ClientCertificateRequired = false,
            }, scope.Token);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException && !_rt.Aborted.IsCancellationRequested)
        {
            _rt.Metrics.TlsHandshake(client: true, ok: false);
            ProxyLog.ClientTlsFailed(_rt.Logger, _flow.Info, certificateHost, scope.TimedOut ? "handshake timeout" : ex.Message);
            return false;
        }

        _rt.Metrics.TlsHandshake(client: true, ok: true);
        TlsBufferRelease.TryEnable(ssl);
        _flow.Info.TlsVersion = ssl.SslProtocol;
        _flow.Info.CipherSuite = ssl.NegotiatedCipherSuite;
        _flow.Info.Alpn = ssl.NegotiatedApplicationProtocol.Protocol.IsEmpty ? null : ssl.NegotiatedApplicationProtocol.ToString();
        scope.Disarm();
        return true;
    }

    /// <summary>
    /// Ends a handshake that cannot start with a fatal internal_error alert (RFC 8446 §6.2) in place of the server's first
    /// message, so that the client reports a refused handshake (curl: "tlsv1 alert internal error") instead of an
    /// unexpected end of the connection; the failure is already counted and logged.
    /// </summary>
    private async ValueTask RefuseHandshakeAsync(TimeoutScope scope)
    {
        try
        {
            await TlsAlert.SendFatalAsync(_client.Stream, TlsAlert.InternalError, scope.Token);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The client left (or the handshake's time ran out) before the alert: the failure it would have announced is
            // logged above, and the connection closes either way.
        }
    }

    /// <summary>Serves HTTP inside the client's TLS: HTTP/2 when "h2" was negotiated (RFC 9113 §3.2), else HTTP/1.1.</summary>
    private Task ServeInterceptedAsync(TunnelTarget tunnel) =>
        ((SslStream)_client.Stream).NegotiatedApplicationProtocol == SslApplicationProtocol.Http2 ? ServeHttp2Async(tunnel) : ServeAsync(tunnel);

    /// <summary>
    /// Whether the tunnel is relayed untouched: a name (the SNI, or the CONNECT host) matches an ignore_hosts pattern,
    /// or allow_hosts is set and neither name matches one of its patterns (mitmproxy's next_layer rule).
    /// </summary>
    private bool IsIgnored(string serverName, string host, int port)
    {
        var ignore = _rt.Options.IgnoreHosts;
        var allow = _rt.Options.AllowHosts;
        if (ignore.Count == 0 && allow.Count == 0)
        {
            return false;
        }

        var portText = ":" + port.ToString(CultureInfo.InvariantCulture);
        var matched = AnyMatch(ignore.Count > 0 ? ignore : allow, serverName, portText) || (host != serverName && AnyMatch(ignore.Count > 0 ? ignore : allow, host, portText));
        return ignore.Count > 0 ? matched : !matched;

        static bool AnyMatch(IList<Regex> patterns, string name, string portText)
        {
            var withPort = name + portText;
            foreach (var pattern in patterns)
            {
                if (pattern.IsMatch(name) || pattern.IsMatch(withPort))
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>A TCP connection to host:port for a byte relay; null with the error when it failed (counted and logged).</summary>
    private async ValueTask<(UpstreamConnection? Connection, ExchangeError? Error)> ConnectRawAsync(string host, int port)
    {
        _flow.Phase = ExchangePhase.Connect;
        var connect = await _rt.Connector.ConnectAsync(new UpstreamKey("tcp", host, port, null), null, _rt.Aborted, _eagerSocket?.Take(host, port));
        if (connect.Error is { } error)
        {
            _rt.Metrics.Error(error);
            ProxyLog.UpstreamFailed(_rt.Logger, _flow.Info, host, port, error.Phase, error.IsTransient ? "transient" : "permanent", error.Message);
            return (null, error);
        }

        return (connect.Connection, null);
    }

    private RelayedTunnel NewTunnel(TunnelKind kind, string host, int port) => new(_flow.Info, kind, host, port, _startedAt);

    /// <summary>Tells the addons (a flow recorder) that a relayed tunnel ended; never fails the connection.</summary>
    private async ValueTask ReportAsync(RelayedTunnel tunnel, ExchangeError? error)
    {
        tunnel.Error = error;
        tunnel.Duration = _rt.Time.GetElapsedTime(_started);
        var addons = _rt.Addons;
        if (!addons.IsEmpty)
        {
            await addons.NotifyAsync("TunnelClosedAsync", tunnel, static (a, t, ct) => a.TunnelClosedAsync(t, ct), _rt.Logger, CancellationToken.None);
        }
    }

    /// <summary>
    /// Relays the tunnel's bytes to host:port untouched, both ways, until both sides close; on
    /// <paramref name="connected"/> when given, else on a new connection.
    /// </summary>
    private async Task RelayRawAsync(string host, int port, string mode, UpstreamConnection? connected = null)
    {
        var tunnel = NewTunnel(mode == "tls-passthrough" ? TunnelKind.TlsPassthrough : TunnelKind.Raw, host, port);
        if (connected is null)
        {
            (connected, var connectError) = await ConnectRawAsync(host, port);
            if (connected is null)
            {
                await ReportAsync(tunnel, connectError);
                return;
            }
        }

        await using var upstream = connected;
        tunnel.ServerEndPoint = upstream.Info.RemoteEndPoint;
        _flow.Phase = ExchangePhase.Response;
        var counts = new TunnelRelay.Counts();
        ExchangeError? error = null;
        try
        {
            var (up, down) = await TunnelRelay.RunAsync(_client, upstream.Transport, _rt.Aborted, counts);
            ProxyLog.TunnelClosed(_rt.Logger, _flow.Info, mode, host, port, up, down);
            _rt.Metrics.BytesUpstream(up);
            _rt.Metrics.BytesDownstream(down);
        }
        catch (Exception ex)
        {
            // A reset, or the proxy stopping: the session ends the connection as before; the tunnel is still reported.
            error = new ExchangeError(ExchangePhase.Response, ex.Message, IsTransient: true, ex);
            throw;
        }
        finally
        {
            tunnel.BytesFromClient = counts.ClientToServer.Value;
            tunnel.BytesFromServer = counts.ServerToClient.Value;
            await ReportAsync(tunnel, error);
        }
    }

    /// <summary>Serves HTTP/2 inside the tunnel.</summary>
    private async Task ServeHttp2Async(TunnelTarget tunnel)
    {
        await using var h2 = new Http2ServerConnection(_flow, tunnel);
        await h2.ServeAsync();
    }

    /// <summary>Serves HTTP/1.1 inside the tunnel.</summary>
    private async Task ServeAsync(TunnelTarget tunnel)
    {
        using var server = new Http1ServerConnection(_flow, tunnel, frontend: null);
        await server.ServeAsync();
    }
}
