using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Interpose.Certificates;
using Interpose.Proxy.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Proxy;

/// <summary>
/// An intercepting HTTP(S) proxy: create it from <see cref="ProxyOptions"/>, start it, stop it, dispose it.
/// </summary>
/// <example>
/// <code>
/// var options = new ProxyOptions();
/// options.Addons.Add(new MyAddon());
/// await using var proxy = new ProxyServer(options);
/// await proxy.StartAsync();
/// </code>
/// </example>
public sealed class ProxyServer : IAsyncDisposable
{
    /// <summary>
    /// The name of the <see cref="System.Diagnostics.ActivitySource"/> with one activity per exchange (OpenTelemetry's
    /// HTTP semantic conventions: a server span, and a child client span when an origin is contacted): what
    /// <c>AddSource</c> and <c>dotnet-trace</c> take. Nothing is added to the forwarded traffic.
    /// </summary>
    public const string ActivitySourceName = "Interpose";

    /// <summary>Pending connections the OS queues per listener: 512, as Kestrel's default backlog.</summary>
    private const int ListenBacklog = 512;

    /// <summary>
    /// Connections refused for a limit that are answered 503 at the same time; past this (a flood), refused connections
    /// are closed without an answer, so refusing never costs more than this many short flows.
    /// </summary>
    private const int MaxConcurrentRefusals = 64;

    private readonly ProxyOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ConcurrentDictionary<long, Task?> _sessions = new();
    private readonly List<Socket> _listeners = [];
    private readonly List<Task> _acceptLoops = [];
    private CancellationTokenSource? _draining;
    private CancellationTokenSource? _aborted;
    private ProxyRuntime? _runtime;

    /// <summary>The runtime while started (tests read its counters).</summary>
    internal ProxyRuntime? Runtime => _runtime;
    private ConnectionLimiter? _limiter;
    private LeafCertificateCache? _leaves;
    private CertificateAuthority? _ownedAuthority;
    private ITimer? _sweepTimer;
    private long _sessionIds;
    private int _refusing;
    private int _disposed;
    private State _state;

    /// <summary>Creates a server; nothing is opened until <see cref="StartAsync"/>.</summary>
    /// <param name="options">What to listen on and how to intercept. Not copied: do not change it after start.</param>
    /// <param name="loggerFactory">Where logs go; none when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    public ProxyServer(ProxyOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("Interpose.Proxy");
    }

    private enum State
    {
        Created,
        Running,
        Stopped,
    }

    /// <summary>The addresses actually listened on (with the real ports when 0 was asked for); empty before start.</summary>
    public IReadOnlyList<IPEndPoint> Endpoints { get; private set; } = [];

    /// <summary>The forged-leaf cache; null before start. For tests and diagnostics.</summary>
    internal LeafCertificateCache? LeafCache => _leaves;

    /// <summary>The certificate authority in use; null before start.</summary>
    public CertificateAuthority? CertificateAuthority { get; private set; }

    /// <summary>True once <see cref="StartAsync"/> waited for the start-up warm-up (<see cref="ProxyOptions.WarmUp"/>).</summary>
    internal bool WarmedUp { get; private set; }

    /// <summary>The running server's instruments; null before start.</summary>
    internal ProxyMetrics? Metrics => _runtime?.Metrics;

    /// <summary>
    /// Replaces the addons of the running proxy (<see cref="ProxyOptions.Addons"/> at start) as one step: exchanges
    /// that start afterwards run the new list, exchanges already running finish with the list they started with, and
    /// no connection is dropped. Reloading scripts uses it.
    /// </summary>
    /// <param name="addons">The new list, in the order the hooks run; copied.</param>
    /// <exception cref="ArgumentNullException"><paramref name="addons"/> or one of its items is null.</exception>
    /// <exception cref="InvalidOperationException">The server has not been started.</exception>
    public void ReplaceAddons(IEnumerable<ProxyAddon> addons)
    {
        ArgumentNullException.ThrowIfNull(addons);
        ProxyAddon[] list = [.. addons];
        foreach (var addon in list)
        {
            ArgumentNullException.ThrowIfNull(addon, nameof(addons));
        }

        var runtime = _runtime ?? throw new InvalidOperationException("The proxy has not been started.");
        runtime.ReplaceAddons(list);
    }

    /// <summary>Loads or creates the CA, binds the listeners and starts accepting. Calling it again does nothing.</summary>
    /// <param name="cancellationToken">Cancels starting.</param>
    /// <returns>A task that completes once the proxy accepts connections and, with <see cref="ProxyOptions.WarmUp"/>, once
    /// its TLS, forging and HTTP paths are warm (the first time in a process: a loopback warm-up of at most 5 s).</returns>
    /// <exception cref="CertificateException">The CA could not be loaded or created (permissions, bad files).</exception>
    /// <exception cref="SocketException">A listening address could not be bound (in use, not local).</exception>
    /// <exception cref="System.Security.Cryptography.CryptographicException">The key for forged leaves could not be generated.</exception>
    /// <exception cref="ObjectDisposedException">The server was stopped or disposed.</exception>
    /// <exception cref="InvalidOperationException">
    /// The options are unsafe: a non-loopback listening address without <see cref="ProxyOptions.Authentication"/> nor
    /// <see cref="ProxyOptions.AllowOpenProxy"/>, or a limit that is not positive.
    /// </exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await _gate.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_state == State.Stopped, this);
            if (_state == State.Running)
            {
                return;
            }

            StartupChecks.Validate(_options, _logger);
            if (_options.SslInsecure)
            {
                ProxyLog.SslInsecure(_logger);
            }

            // Key generation and file I/O stay off the caller's thread.
            var authority = _options.CertificateAuthority;
            if (authority is null)
            {
                var caOptions = new CertificateAuthorityOptions { Directory = _options.ConfigDirectory, TimeProvider = _options.TimeProvider };
                var caLogger = _loggerFactory.CreateLogger("Interpose.Certificates");
                authority = await Task.Run(() => CertificateAuthority.LoadOrCreate(caOptions, caLogger), cancellationToken);
                _ownedAuthority = authority;
            }

            CertificateAuthority = authority;
            _leaves = new LeafCertificateCache(authority, new LeafCertificateCacheOptions { Capacity = _options.LeafCacheCapacity }, _loggerFactory.CreateLogger("Interpose.Certificates"));
            _draining = new CancellationTokenSource();
            _aborted = new CancellationTokenSource();
            _limiter = new ConnectionLimiter(_options, _logger);
            _runtime = new ProxyRuntime(_options, _loggerFactory, _leaves, _draining.Token, _aborted.Token);

            var bound = new List<IPEndPoint>();
            try
            {
                foreach (var endPoint in _options.ListenEndpoints)
                {
                    var listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                    _listeners.Add(listener);
                    if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
                    {
                        listener.DualMode = true;
                    }

                    listener.Bind(endPoint);
                    listener.Listen(ListenBacklog);
                    var local = (IPEndPoint)listener.LocalEndPoint!;
                    bound.Add(local);
                    ProxyLog.Listening(_logger, local);
                }
            }
            catch
            {
                foreach (var listener in _listeners)
                {
                    listener.Dispose();
                }

                _listeners.Clear();

                // Nothing ran yet, but the runtime's timers, meter and pool, the leaf cache and the token sources exist:
                // released here, as StopAsync would (it does nothing for a server that never started), so a start
                // tried again (another port) does not leave them behind.
                await ReleaseRuntimeAsync(forget: true);
                throw;
            }

            Endpoints = bound;
            foreach (var listener in _listeners)
            {
                _acceptLoops.Add(AcceptLoopAsync(listener, _draining.Token));
            }

            var sweep = _options.Timeouts.UpstreamIdle / 2;
            _sweepTimer = _options.TimeProvider.CreateTimer(static s => ((ProxyServer)s!).Sweep(), this, sweep, sweep);
            _state = State.Running;
        }
        finally
        {
            _gate.Release();
        }

        // The shared leaf key is generated now, so the first forge does not generate it in a client's handshake. With
        // WarmUp, returning only once the TLS, forging and HTTP paths are compiled means that "started" also means "the
        // first client is served at warm speed" (once per process; bounded; never throws).
        var leafKey = _leaves?.WarmUpAsync(CancellationToken.None) ?? Task.CompletedTask;
        if (_options.WarmUp)
        {
            await StartupWarmUp.WaitAsync(_options, _logger, cancellationToken);
            WarmedUp = true;
        }

        await leafKey;
    }

    /// <summary>
    /// Stops gracefully: no new connections; idle connections close; exchanges in flight get
    /// <see cref="ProxyTimeouts.Shutdown"/> to finish, then everything still open is closed. Safe to call repeatedly.
    /// </summary>
    /// <param name="cancellationToken">Cuts the grace period short: connections are closed at once.</param>
    /// <returns>A task that completes when every connection is closed.</returns>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            if (_state != State.Running)
            {
                _state = State.Stopped;
                return;
            }

            _state = State.Stopped;
            await _draining!.CancelAsync();
            foreach (var listener in _listeners)
            {
                listener.Dispose();
            }

            await Task.WhenAll(_acceptLoops);
            var sessions = Snapshot();
            ProxyLog.Stopping(_logger, sessions.Length);
            try
            {
                await Task.WhenAll(sessions).WaitAsync(_options.Timeouts.Shutdown, _options.TimeProvider, cancellationToken);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                ProxyLog.ShutdownDeadline(_logger, Snapshot().Length);
                await _aborted!.CancelAsync();
                await Task.WhenAll(Snapshot());
            }

            await _aborted!.CancelAsync();
            _sweepTimer?.Dispose();
            await ReleaseRuntimeAsync(forget: false);
            ProxyLog.Stopped(_logger);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Starts, runs until <paramref name="stoppingToken"/> is cancelled (e.g. Ctrl+C), then stops gracefully.</summary>
    /// <param name="stoppingToken">Cancel to stop.</param>
    /// <returns>A task that completes once the proxy has stopped.</returns>
    /// <exception cref="CertificateException">The CA could not be loaded or created.</exception>
    /// <exception cref="SocketException">A listening address could not be bound.</exception>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        await StartAsync(stoppingToken);
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, _options.TimeProvider, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Asked to stop: fall through to the graceful stop.
        }

        await StopAsync(CancellationToken.None);
    }

    /// <summary>Stops (gracefully) and releases everything.</summary>
    /// <returns>A task that completes when everything is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _gate.Dispose();
        }
    }

    /// <summary>
    /// Releases what <see cref="StartAsync"/> created for the runtime (after the listeners and sessions are gone); with
    /// <paramref name="forget"/> (a start that failed), also drops it, so that the next start creates it afresh.
    /// </summary>
    private async ValueTask ReleaseRuntimeAsync(bool forget)
    {
        if (_runtime is { } runtime)
        {
            await runtime.Pool.DisposeAsync();
            runtime.Metrics.Dispose();
            runtime.HookDeadlines.Dispose();
            runtime.HeapTrim.Dispose();
        }

        _leaves?.Dispose();
        _ownedAuthority?.Dispose();
        _draining?.Dispose();
        _aborted?.Dispose();
        if (forget)
        {
            (_runtime, _leaves, _ownedAuthority, _draining, _aborted, _limiter) = (null, null, null, null, null, null);
            CertificateAuthority = null;
        }
    }

    private Task[] Snapshot() => [.. _sessions.Values.OfType<Task>()];

    private async Task AcceptLoopAsync(Socket listener, CancellationToken cancellationToken)
    {
        // Yield so that StartAsync returns before the first accept completes.
        await Task.Yield();
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException || cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Transient (e.g. the client reset before accept, or descriptors ran out): keep accepting.
                ProxyLog.AcceptFailed(_logger, listener.LocalEndPoint!, ex);
                continue;
            }

            var admitted = _limiter!.TryAdmit(socket, out var refusal, out var shed);
            if (shed != ConnectionRefusal.None)
            {
                _runtime!.Metrics.ConnectionShed(shed);
            }

            if (admitted is null)
            {
                _runtime!.Metrics.ConnectionRefused(refusal);
                if (_limiter.Reason(refusal) is { } overload)
                {
                    if (Interlocked.Increment(ref _refusing) <= MaxConcurrentRefusals)
                    {
                        // A clear answer rather than a silent close (RFC 9110 §15.6.4: 503, the server is overloaded).
                        var refusalId = Interlocked.Increment(ref _sessionIds);
                        _sessions[refusalId] = null;
                        var answering = RefuseAsync(refusalId, socket, overload);
                        _sessions.TryUpdate(refusalId, answering, null);
                        continue;
                    }

                    Interlocked.Decrement(ref _refusing);
                }

                socket.Dispose();
                continue;
            }

            socket.NoDelay = true;
            var id = Interlocked.Increment(ref _sessionIds);
            _sessions[id] = null;
            var task = RunSessionAsync(id, socket, admitted);
            _sessions.TryUpdate(id, task, null);
        }
    }

    /// <summary>
    /// Answers 503 with the reason, then closes by the lingering-close rule every answered connection follows (RFC 9112
    /// §9.6, <see cref="LingeringClose"/>): the request, refused whatever it says, is read and discarded for at most
    /// 2 s and 64 MiB, so a client that keeps sending cannot hold the refusal open. Owns the socket.
    /// </summary>
    private async Task RefuseAsync(long id, Socket socket, string reason)
    {
        // Off the accept loop, like a session.
        await Task.Yield();
        try
        {
            using var linger = new TimeoutScope(_options.TimeProvider, LingeringClose.Timeout, _draining!.Token);
            var body = "Interpose: " + reason + "; try again later\n";
            var response = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {body.Length}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n{body}"));
            await socket.SendAsync(response, SocketFlags.None, linger.Token);
            await LingeringClose.DiscardAsync(socket, linger.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client left, reset, or was still sending when the linger ended: there is nobody left to tell.
        }
        finally
        {
            socket.Dispose();
            Interlocked.Decrement(ref _refusing);
            _sessions.TryRemove(id, out _);
        }
    }

    private async Task RunSessionAsync(long id, Socket socket, AdmittedConnection admitted)
    {
        // Each connection runs as its own flow on the thread pool; the accept loop never waits for one.
        await Task.Yield();
        var metrics = _runtime!.Metrics;
        metrics.ConnectionOpened();
        try
        {
            await new ClientSession(_runtime, socket, admitted).RunAsync();
        }
        finally
        {
            metrics.ConnectionClosed();
            socket.Dispose();
            _limiter!.Release(admitted);
            _sessions.TryRemove(id, out _);
        }
    }

    private void Sweep()
    {
        if (_runtime is { } runtime)
        {
            _ = SweepAsync(runtime.Pool);
        }

        static async Task SweepAsync(UpstreamPool pool)
        {
            try
            {
                await pool.SweepAsync();
            }
            catch (ObjectDisposedException)
            {
                // Stopping: the pool is being emptied anyway.
            }
        }
    }
}
