using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Interpose.Proxy;
using Interpose.Web;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Interpose.Cli;

/// <summary><c>interpose run</c>: start the proxy and print one line per exchange until Ctrl+C or SIGTERM.</summary>
internal static class RunCommand
{
    /// <summary>--min-data-rate's grace period at most: a day, far past any useful grace and well inside TimeSpan.</summary>
    private const double MaxGraceSeconds = 24 * 60 * 60;

    /// <summary>--hook-timeout at most: a day, as the grace period above; a longer bound is better said with <c>off</c>.</summary>
    private const double MaxHookTimeoutSeconds = 24 * 60 * 60;

    public static Command Create()
    {
        var listen = new Option<string[]>("--listen", "-l")
        {
            Description = "Address to listen on, HOST:PORT or [IPv6]:PORT; repeatable (default 127.0.0.1:8080)",
            AllowMultipleArgumentsPerToken = false,
        };
        var ignoreHosts = new Option<string[]>("--ignore-hosts") { Description = "Regular expression of hosts (host or host:port) whose TLS is relayed untouched; repeatable" };
        var sslInsecure = new Option<bool>("--ssl-insecure", "-k") { Description = "Do not validate origin certificates (dangerous)" };
        var upstreamCa = new Option<FileInfo?>("--upstream-ca") { Description = "Validate origin certificates against these PEM roots instead of the system store" };
        var via = new Option<bool>("--via") { Description = "Add a Via header to forwarded messages" };
        var noHttp2 = new Option<bool>("--no-http2") { Description = "Speak only HTTP/1.1 to clients (no ALPN h2, no h2c prior knowledge in tunnels)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only warnings and errors; no flow lines" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Debug logging (TLS, connections, certificates)" };
        var metrics = new Option<string?>("--metrics")
        {
            Description = "Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9090; a non-loopback address needs --allow-open-proxy); off by default",
        };
        var otlp = new Option<string?>("--otlp")
        {
            Description = "Export a trace span per exchange to this OpenTelemetry collector over OTLP/HTTP (e.g. http://127.0.0.1:4318); off by default",
            HelpName = "ENDPOINT",
        };
        var proxyAuth = new Option<string[]>("--proxy-auth") { Description = "Require proxy authentication (Basic) with USER:PASSWORD; repeatable (visible in the process list: prefer --proxy-auth-file)" };
        var proxyAuthFile = new Option<FileInfo?>("--proxy-auth-file") { Description = "Require proxy authentication with the USER:PASSWORD lines of this file (# comments)" };
        var allowOpenProxy = new Option<bool>("--allow-open-proxy") { Description = "Allow listening on a non-loopback address without proxy authentication (an open proxy), and a non-loopback --web or --metrics address" };
        var allowClient = new Option<string[]>("--allow-client") { Description = "Only serve clients in this network (CIDR, e.g. 10.0.0.0/8); repeatable" };
        var connectPorts = new Option<string[]>("--connect-ports") { Description = "Only allow CONNECT to these ports (comma-separated or repeated, e.g. 443,8443); default any" };
        var maxConnections = new Option<int>("--max-connections") { Description = "Open client connections at most", DefaultValueFactory = _ => ProxyOptions.DefaultMaxConnections };
        var maxPerClient = new Option<int>("--max-connections-per-client") { Description = "Open connections per client address at most", DefaultValueFactory = _ => ProxyOptions.DefaultMaxConnectionsPerClient };
        var minDataRate = new Option<string?>("--min-data-rate")
        {
            Description = "Slowest a client may send a request body or read a response: BYTES_PER_SECOND[:GRACE_SECONDS] "
                + "(default 240:5, Kestrel's); off disables it",
        };
        var hookTimeout = new Option<string?>("--hook-timeout")
        {
            Description = $"Longest an addon or -s script hook may take, in seconds (default {ProxyTimeouts.DefaultAddonHook.TotalSeconds:0}); "
                + "past it the exchange fails with a 502 naming the addon; off disables it",
            HelpName = "SECONDS",
        };
        var logFormat = new Option<string>("--log-format") { Description = "text or json", DefaultValueFactory = _ => "text" };
        logFormat.AcceptOnlyFromAmong("text", "json");
        var connectionStrategy = new Option<string>("--connection-strategy")
        {
            Description = "eager: open the origin connection while the client's TLS handshake completes (faster first request); lazy: only when a request needs it",
            DefaultValueFactory = _ => "eager",
        };
        connectionStrategy.AcceptOnlyFromAmong("eager", "lazy");

        var command = new Command("run", "Start the proxy (explicit HTTP/HTTPS proxy; point clients at it)")
        {
            listen, ignoreHosts, sslInsecure, upstreamCa, via, noHttp2, quiet, verbose, metrics, otlp, logFormat,
            proxyAuth, proxyAuthFile, allowOpenProxy, allowClient, connectPorts, maxConnections, maxPerClient, connectionStrategy,
            minDataRate, hookTimeout,
        };

        CaSourceOptions.AddTo(command);
        SaveOptions.AddTo(command);
        ServerReplayFlags.AddTo(command);
        WebOptions.AddTo(command);
        RuleOptions.AddTo(command);
        ScriptOptions.AddTo(command);
        RunConfigFile.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            try
            {
                return await RunAsync(result, cancellationToken);
            }
            catch (Exception ex) when (CliErrors.IsUserError(ex))
            {
                return CliErrors.Report(ex.Message);
            }
        });
        return command;

        async Task<int> RunAsync(ParseResult result, CancellationToken cancellationToken)
        {
            var options = new ProxyOptions
            {
                ConfigDirectory = CliOptions.ResolveHome(result),
                SslInsecure = result.GetValue(sslInsecure),
                AddVia = result.GetValue(via),
                Http2 = !result.GetValue(noHttp2),
                AllowOpenProxy = result.GetValue(allowOpenProxy),
                MaxConnections = result.GetValue(maxConnections),
                MaxConnectionsPerClient = result.GetValue(maxPerClient),
                ConnectionStrategy = result.GetValue(connectionStrategy) == "lazy" ? ConnectionStrategy.Lazy : ConnectionStrategy.Eager,

                // A long-running proxy process: its first client should not pay for compiling the exchange path.
                WarmUp = true,

                // The same cipher suites, from the OpenSSL configuration this process set at start (RuntimeTuning).
                UseOpenSslCipherConfiguration = RuntimeTuning.OpenSslConfiguration is not null,
            };
            RuleOptions.Apply(result, options);
            ApplyAccessOptions(options, result.GetValue(proxyAuth) ?? [], result.GetValue(proxyAuthFile), result.GetValue(allowClient) ?? [], result.GetValue(connectPorts) ?? []);
            if (result.GetValue(minDataRate) is { } rateText)
            {
                var rate = ParseMinDataRate(rateText);
                options.Timeouts.MinRequestBodyDataRate = rate;
                options.Timeouts.MinResponseDataRate = rate;
            }

            if (result.GetValue(hookTimeout) is { } hookTimeoutText)
            {
                options.Timeouts.AddonHook = ParseHookTimeout(hookTimeoutText);
            }

            var endpoints = result.GetValue(listen) ?? [];
            if (endpoints.Length > 0)
            {
                options.ListenEndpoints.Clear();
                foreach (var text in endpoints)
                {
                    options.ListenEndpoints.Add(ParseEndPoint(text));
                }
            }

            foreach (var pattern in result.GetValue(ignoreHosts) ?? [])
            {
                options.IgnoreHosts.Add(ParseRegex(pattern));
            }

            if (result.GetValue(upstreamCa) is { } upstream)
            {
                options.UpstreamTrustedRoots.AddRange(LoadPemBundle(upstream));
            }

            // What the server refuses at start (limits, an open proxy), refused now: before the CA is created on a first
            // run, and by --options.
            CheckLimit(options.MaxConnections, maxConnections);
            CheckLimit(options.MaxConnectionsPerClient, maxPerClient);
            try
            {
                Proxy.Internal.StartupChecks.Validate(options, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            }
            catch (InvalidOperationException ex)
            {
                throw new CliUsageException(ex.Message);
            }

            // The options are checked above; --options prints them instead of running. What start checks later (with the
            // CA loaded) is checked here too where it needs no CA: -S and its flags, --web and --intercept, the exporters'
            // endpoints (the options are dropped after printing, so the intercept addon added here is never used).
            if (result.GetValue(RunConfigFile.PrintOptions))
            {
                await ServerReplayFlags.CheckAsync(result);
                _ = WebOptions.AddIntercept(result, options, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
                if (WebOptions.IsGiven(result))
                {
                    _ = WebOptions.EndPoint(result, options.AllowOpenProxy);
                }

                _ = result.GetValue(metrics) is { } metricsValue ? ParseMetricsEndPoint(metricsValue, options.AllowOpenProxy) : null;
                _ = result.GetValue(otlp) is { } otlpValue ? TraceExporter.ParseEndpoint(otlpValue) : null;
                return RunConfigFile.Print(command, result);
            }

            var level = result.GetValue(quiet) ? LogLevel.Warning : result.GetValue(verbose) ? LogLevel.Debug : LogLevel.Information;
            using var loggerFactory = CreateLoggerFactory(level, result.GetValue(logFormat) == "json");
            var cliLogger = loggerFactory.CreateLogger("Interpose.Cli");
            if (RuntimeTuning.OpenSslConfiguration is { } openSslConfiguration)
            {
                CliLog.TlsPolicyFromOpenSsl(cliLogger, openSslConfiguration);
            }

            if (AppContext.GetData("System.GC.Gen0MaxBudget") is { } gen0Budget)
            {
                CliLog.Gen0BudgetCap(cliLogger, gen0Budget);
            }

            if (AppContext.GetData("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit") is { } spinLimit)
            {
                CliLog.ThreadPoolSpinLimit(cliLogger, spinLimit);
            }

            // The install's CA is created on first use; --ca-cert/--ca-key or --ca-p12 bring your own.
            using var authority = CaSourceOptions.Load(result, createIfMissing: true, loggerFactory.CreateLogger("Interpose.Certificates"));
            CaValidityCheck.Check(authority, CaSourceOptions.IsOwn(result), TimeProvider.System.GetUtcNow(), cliLogger);
            options.CertificateAuthority = authority;
            await ServerReplayFlags.ApplyAsync(result, options, loggerFactory, cancellationToken);
            var intercept = WebOptions.AddIntercept(result, options, loggerFactory);
            var feed = WebOptions.IsGiven(result) ? new FlowFeed() : null;
            if (feed is not null)
            {
                _ = WebOptions.EndPoint(result, options.AllowOpenProxy); // a bad --web fails before anything starts
            }

            await using var recording = SaveOptions.Start(result, options, loggerFactory, feed);

            // Ctrl+C and SIGTERM start a graceful shutdown instead of killing the process.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);

            var metricsEndPoint = result.GetValue(metrics) is { } metricsText ? ParseMetricsEndPoint(metricsText, options.AllowOpenProxy) : null;
            using var meterProvider = metricsEndPoint is null ? null : MetricsExporter.Start(metricsEndPoint);
            using var tracerProvider = result.GetValue(otlp) is { } otlpText ? TraceExporter.Start(TraceExporter.ParseEndpoint(otlpText)) : null;

            // Scripts' addons run after every other addon (mitmproxy runs its rule addons before user scripts).
            ProxyAddon[] beforeScripts = [.. options.Addons];
            await using var scripts = ScriptOptions.Load(result, options, loggerFactory);
            await using var server = new ProxyServer(options, loggerFactory);
            try
            {
                await server.StartAsync(cancellationToken);
            }
            catch (InvalidOperationException ex)
            {
                throw new CliUsageException(ex.Message);
            }

            if (scripts is not null)
            {
                ScriptOptions.Watch(scripts, server, beforeScripts);
            }

            var ca = server.CertificateAuthority!;
            var endpointsText = string.Join(", ", server.Endpoints);
            await Console.Error.WriteLineAsync($"Interpose listening on {endpointsText}");
            await Console.Error.WriteLineAsync($"CA: {ca.CertificatePath ?? "(given)"} (SHA-256 {ca.Sha256Fingerprint})");
            if (metricsEndPoint is not null)
            {
                await Console.Error.WriteLineAsync($"Metrics at {MetricsExporter.Url(metricsEndPoint)}");
            }

            await Console.Error.WriteLineAsync("Trust it in your clients: `interpose ca trust` prints the steps (curl: --cacert " + (ca.CertificatePath ?? "<ca.pem>") + ")");
            await using var web = feed is null ? null : await WebOptions.StartAsync(result, server, options, recording!.Store, feed, intercept, loggerFactory, cancellationToken);
            if (web is not null)
            {
                await Console.Error.WriteLineAsync($"Web UI at {web.Url}");
            }

            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
                // Asked to stop.
            }

            await Console.Error.WriteLineAsync("Stopping: letting exchanges in flight finish...");
            await server.StopAsync(CancellationToken.None);
            return 0;

            void Cancel(PosixSignalContext context)
            {
                context.Cancel = true;
                stop.Cancel();
            }
        }
    }

    /// <summary>Proxy users, client networks and CONNECT ports from their flags.</summary>
    internal static void ApplyAccessOptions(ProxyOptions options, string[] users, FileInfo? usersFile, string[] clients, string[] ports)
    {
        foreach (var user in users)
        {
            try
            {
                options.Authentication.Add(user);
            }
            catch (ArgumentException)
            {
                // The value is a secret: the message does not repeat it.
                throw new CliUsageException("--proxy-auth: expected USER:PASSWORD with a non-empty user and no control characters");
            }
        }

        if (usersFile is not null)
        {
            try
            {
                options.Authentication.AddFromFile(usersFile.FullName);
            }
            catch (FormatException ex)
            {
                throw new CliUsageException("--proxy-auth-file: " + ex.Message);
            }

            if (!options.Authentication.IsEnabled)
            {
                throw new CliUsageException($"--proxy-auth-file: no USER:PASSWORD line in {usersFile.FullName}");
            }
        }

        foreach (var cidr in clients)
        {
            options.AllowedClients.Add(IPNetwork.TryParse(cidr, out var network)
                ? network
                : throw new CliUsageException($"--allow-client: '{cidr}' is not a network in CIDR notation (e.g. 192.168.1.0/24 or ::1/128)"));
        }

        foreach (var port in ports.SelectMany(p => p.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)))
        {
            options.AllowedConnectPorts.Add(int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value is >= 1 and <= 65535
                ? value
                : throw new CliUsageException($"--connect-ports: '{port}' is not a TCP port (1-65535)"));
        }
    }

    /// <summary>
    /// --min-data-rate: BYTES_PER_SECOND[:GRACE_SECONDS] (the grace period defaults to Kestrel's 5 s), or <c>off</c>
    /// (null: no minimum).
    /// </summary>
    /// <exception cref="CliUsageException">The text is neither.</exception>
    internal static MinDataRate? ParseMinDataRate(string text)
    {
        if (text.Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var rateText = colon < 0 ? text : text[..colon];
        var graceSeconds = ProxyTimeouts.DefaultMinRequestBodyDataRate.GracePeriod.TotalSeconds;
        const NumberStyles Decimal = NumberStyles.AllowDecimalPoint;
        if (double.TryParse(rateText, Decimal, CultureInfo.InvariantCulture, out var bytesPerSecond) && bytesPerSecond > 0 && double.IsFinite(bytesPerSecond)
            && (colon < 0 || (double.TryParse(text.AsSpan(colon + 1), Decimal, CultureInfo.InvariantCulture, out graceSeconds) && graceSeconds <= MaxGraceSeconds)))
        {
            return new MinDataRate(bytesPerSecond, TimeSpan.FromSeconds(graceSeconds));
        }

        throw new CliUsageException($"--min-data-rate: '{text}' is not BYTES_PER_SECOND[:GRACE_SECONDS] with a rate above 0 (e.g. 240:5), or off");
    }

    /// <summary>--hook-timeout: seconds above 0 (fractions allowed), or <c>off</c> (<see cref="Timeout.InfiniteTimeSpan"/>).</summary>
    /// <exception cref="CliUsageException">The text is neither.</exception>
    internal static TimeSpan ParseHookTimeout(string text)
    {
        if (text.Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            return Timeout.InfiniteTimeSpan;
        }

        if (double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds) && seconds > 0 && seconds <= MaxHookTimeoutSeconds)
        {
            return TimeSpan.FromSeconds(seconds);
        }

        throw new CliUsageException($"--hook-timeout: '{text}' is not a number of seconds above 0 and at most {MaxHookTimeoutSeconds:0} (e.g. 90), or off");
    }

    /// <summary>HOST:PORT, [IPv6]:PORT, or a bare port (loopback).</summary>
    internal static IPEndPoint ParseEndPoint(string text, string option = "--listen")
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var bare) && bare is >= 0 and <= 65535)
        {
            return new IPEndPoint(IPAddress.Loopback, bare);
        }

        if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            text = "127.0.0.1" + text["localhost".Length..];
        }

        return IPEndPoint.TryParse(text, out var endPoint) && text.Contains(':', StringComparison.Ordinal)
            ? endPoint
            : throw new CliUsageException($"{option}: '{text}' is not HOST:PORT (an IP address and a port, e.g. 127.0.0.1:8080 or [::1]:8080)");
    }

    /// <summary>
    /// HOST:PORT for --metrics: an IP address and a port other than 0 (HttpListener cannot pick one), loopback unless
    /// <paramref name="allowNonLoopback"/> (--allow-open-proxy, as for --web).
    /// </summary>
    /// <exception cref="CliUsageException">The text is not such an address.</exception>
    internal static IPEndPoint ParseMetricsEndPoint(string text, bool allowNonLoopback)
    {
        var endPoint = ParseEndPoint(text, "--metrics");
        if (endPoint.Port == 0)
        {
            throw new CliUsageException($"--metrics: '{text}' needs a real port (e.g. 127.0.0.1:9090)");
        }

        // The metrics tell how busy the proxy is, its addons' names and its process's state: not for whoever reaches it.
        return IPAddress.IsLoopback(endPoint.Address) || allowNonLoopback
            ? endPoint
            : throw new CliUsageException($"--metrics: {endPoint} is not a loopback address; anyone who reaches it reads the proxy's metrics. Add --allow-open-proxy to allow it");
    }

    /// <summary>A connection limit: at least 1, as the server requires (<c>StartupChecks</c>).</summary>
    /// <exception cref="CliUsageException">It is less.</exception>
    private static void CheckLimit(int value, Option<int> option)
    {
        if (value < 1)
        {
            throw new CliUsageException($"{RunConfigFile.Describe(option)}: '{value.ToString(CultureInfo.InvariantCulture)}' is not a number of connections of at least 1");
        }
    }

    private static Regex ParseRegex(string pattern)
    {
        try
        {
            // A user-given pattern on a hot path: bounded so that a pathological one cannot stall connections.
            return new Regex(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        }
        catch (ArgumentException ex)
        {
            throw new CliUsageException($"--ignore-hosts: '{pattern}' is not a valid regular expression: {ex.Message}");
        }
    }

    internal static X509Certificate2Collection LoadPemBundle(FileInfo file)
    {
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPemFile(file.FullName);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new CliUsageException($"--upstream-ca: cannot read certificates from {file.FullName}: {ex.Message}");
        }

        return collection.Count > 0 ? collection : throw new CliUsageException($"--upstream-ca: no PEM certificate in {file.FullName}");
    }

    internal static ILoggerFactory CreateLoggerFactory(LogLevel level, bool json, Action<ILoggingBuilder>? configure = null) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(level);
        configure?.Invoke(builder);
        if (json)
        {
            builder.AddJsonConsole(o => o.IncludeScopes = false);
        }
        else
        {
            builder.AddConsole(o => o.FormatterName = FlowConsoleFormatter.FormatterName);
            // Registered as a plain service: AddConsoleFormatter<,> also binds options from configuration by
            // reflection, which this formatter has none of and which native AOT cannot compile.
            builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ConsoleFormatter, FlowConsoleFormatter>());
        }
    });
}
