using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Interpose.Certificates;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>
/// A real Interpose proxy on 127.0.0.1:0 with its own CA in a temporary home, trusting the test origins' root, and a
/// resolver that maps every name to 127.0.0.1 so that no DNS query leaves the machine.
/// </summary>
public sealed class TestProxy : IAsyncDisposable
{
    private readonly string _home;
    private readonly ILoggerFactory _loggerFactory;

    private TestProxy(ProxyServer server, ProxyOptions options, string home, ILoggerFactory loggerFactory, CertificateAuthority authority)
    {
        Server = server;
        Options = options;
        _home = home;
        _loggerFactory = loggerFactory;
        Authority = authority;
    }

    public ProxyServer Server { get; }

    public ProxyOptions Options { get; }

    public CertificateAuthority Authority { get; }

    public int Port => Server.Endpoints[0].Port;

    public Uri Url => new($"http://127.0.0.1:{Port}");

    /// <summary>The Interpose CA certificate as a PEM file, for curl --cacert.</summary>
    public string CaPemPath => Authority.CertificatePath!;

    /// <summary>The tests' server-first wait: far beyond any test's length, so only a test that asks for the wait sees it.</summary>
    public static readonly TimeSpan TestServerFirstWait = TimeSpan.FromMinutes(10);

    /// <summary>Starts a proxy; <paramref name="logs"/>, when given, receives every event it logs.</summary>
    public static async Task<TestProxy> StartAsync(ITestOutputHelper? output = null, Action<ProxyOptions>? configure = null, LogLevel minimumLevel = LogLevel.Debug, ILoggerProvider? logs = null)
    {
        var home = Directory.CreateTempSubdirectory("interpose-test-").FullName;
        var loggerFactory = LoggerFactory.Create(b =>
        {
            b.SetMinimumLevel(minimumLevel);
            if (output is not null)
            {
                b.AddProvider(new TestOutputLoggerProvider(output));
            }

            if (logs is not null)
            {
                b.AddProvider(logs);
            }
        });
        var authority = CertificateAuthority.LoadOrCreate(new CertificateAuthorityOptions { Directory = home });
        var options = new ProxyOptions
        {
            CertificateAuthority = authority,
            Resolver = static (_, _) => ValueTask.FromResult(new[] { IPAddress.Loopback }),
        };
        options.ListenEndpoints.Clear();
        options.ListenEndpoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        options.UpstreamTrustedRoots.Add(TestPki.OriginRoot);

        // A test client is never slow enough to be taken for a server-first protocol: with the 1 s default, a ClientHello
        // delayed past it on a loaded machine first opens (and closes) a raw origin connection, which the tests that count
        // connections or hook events would see. Tests of the server-first path set their own wait.
        options.Timeouts.ServerFirstWait = TestServerFirstWait;
        configure?.Invoke(options);
        var server = new ProxyServer(options, loggerFactory);
        await server.StartAsync();
        return new TestProxy(server, options, home, loggerFactory, authority);
    }

    /// <summary>An HttpClient that goes through the proxy and trusts only the Interpose CA for HTTPS.</summary>
    public HttpClient CreateClient(X509Certificate2? trustInstead = null, bool pooled = true)
    {
        var trusted = trustInstead ?? Authority.Certificate;
        var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy(Url),
            UseProxy = true,
            PooledConnectionLifetime = pooled ? Timeout.InfiniteTimeSpan : TimeSpan.Zero,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, errors) => ChainsTo(cert, trusted, errors),
            },
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(2) };
    }

    /// <summary>True when <paramref name="certificate"/> chains to <paramref name="root"/> and names the host.</summary>
    public static bool ChainsTo(X509Certificate? certificate, X509Certificate2 root, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        var ok = chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
        if (!ok)
        {
            Console.Error.WriteLine("CHAIN FAIL: " + string.Join(",", chain.ChainStatus.Select(s => s.Status + ":" + s.StatusInformation)) + " leaf NotBefore=" + ((X509Certificate2)certificate).NotBefore.ToString("O") + " root NotBefore " + root.NotBefore.ToString("O"));
        }

        return ok;
    }

    /// <summary>Runs curl through the proxy (with --cacert for the Interpose CA unless <paramref name="cacert"/> says otherwise).</summary>
    public async Task<ProcessResult> CurlAsync(string? cacert, params string[] args)
    {
        var all = new List<string> { "--silent", "--show-error", "--proxy", Url.ToString(), "--noproxy", "" };
        if (cacert is not null)
        {
            all.Add("--cacert");
            all.Add(cacert);
        }

        all.AddRange(args);
        return await ProcessResult.RunAsync("curl", all);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Authority.Dispose();
        _loggerFactory.Dispose();
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }
}

/// <summary>What an external program printed and returned.</summary>
public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Safety bound so a hung tool fails the test instead of hanging the suite (not a timing assertion).</summary>
    private static readonly TimeSpan MaxRunTime = TimeSpan.FromMinutes(3);

    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        // The proxy under test is the only proxy: no environment proxy may interfere.
        foreach (var name in new[] { "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy" })
        {
            info.Environment.Remove(name);
        }

        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(MaxRunTime);
        var stdout = process.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = process.StandardError.ReadToEndAsync(cts.Token);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', args)} did not finish");
        }

        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }
}

/// <summary>Sends the proxy's logs to the test output, so a failing test shows what the proxy saw.</summary>
public sealed class TestOutputLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(output, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(ITestOutputHelper output, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                output.WriteLine($"[{logLevel}] {category}: {formatter(state, exception)}{(exception is null ? "" : " | " + exception.GetType().Name + ": " + exception.Message)}");
            }
            catch (InvalidOperationException)
            {
                // The test finished; its output is closed.
            }
        }
    }
}
