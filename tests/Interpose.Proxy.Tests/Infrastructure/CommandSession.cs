using System.IO.Compression;
using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>
/// What the tests of the real command share: a temporary folder, the <c>interpose</c> processes a test started (their
/// output goes to the test's output when the session ends), one-shot runs of the command, and a client through a proxy.
/// </summary>
public sealed class CommandSession(ITestOutputHelper output) : IAsyncDisposable
{
    private readonly List<InterposeProcess> _started = [];

    /// <summary>The session's folder, deleted at the end.</summary>
    public string Dir { get; } = Directory.CreateTempSubdirectory("interpose-cmd-").FullName;

    /// <summary>A configuration directory (CA, config.json) in <see cref="Dir"/>.</summary>
    public string Home => Path.Combine(Dir, "home");

    /// <summary>A flow store path in <see cref="Dir"/>.</summary>
    public string Store => Path.Combine(Dir, "flows.db");

    /// <summary>Keeps <paramref name="process"/> to stop it and print its output at the end.</summary>
    public InterposeProcess Track(InterposeProcess process)
    {
        _started.Add(process);
        return process;
    }

    /// <summary>The test PKI's origin root as a PEM file, for <c>--upstream-ca</c>.</summary>
    public string OriginRootPem()
    {
        var path = Path.Combine(Dir, "origin-root.pem");
        File.WriteAllText(path, TestPki.OriginRoot.ExportCertificatePem());
        return path;
    }

    /// <summary>Runs the command once (the native build when INTERPOSE_CLI names one) and logs what it printed.</summary>
    public async Task<ProcessResult> CliAsync(params string[] args)
    {
        var result = InterposeProcess.NativeCliPath is { } native
            ? await ProcessResult.RunAsync(native, args)
            : await ProcessResult.RunAsync("dotnet", [InterposeProcess.CliPath, .. args]);
        output.WriteLine($"interpose {string.Join(' ', args)} -> {result.ExitCode}\n{result.StandardOutput}{result.StandardError}");
        return result;
    }

    /// <summary>An HttpClient through <paramref name="proxy"/> that trusts only its CA for HTTPS.</summary>
    public static HttpClient Client(InterposeProcess proxy)
    {
        var ca = X509CertificateLoader.LoadCertificateFromFile(proxy.CaPemPath);
        var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy(proxy.Url),
            UseProxy = true,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, errors) => TestProxy.ChainsTo(cert, ca, errors),
            },
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(1) };
    }

    /// <summary>A loopback port nothing listens on: bound, then released.</summary>
    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The non-empty lines a command printed on standard output.</summary>
    public static string[] Lines(ProcessResult result) => result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary><see cref="Origins.MapBasics"/> and <c>/gz</c>: a gzip-encoded JSON body.</summary>
    public static void MapWithGzip(WebApplication app)
    {
        Origins.MapBasics(app);
        app.MapGet("/gz", async (HttpContext context) =>
        {
            context.Response.ContentType = "application/json";
            context.Response.Headers.ContentEncoding = "gzip";
            using var buffer = new MemoryStream();
            using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
            {
                gzip.Write("{\"hello\":\"world\",\"n\":[1,2]}"u8);
            }

            await context.Response.Body.WriteAsync(buffer.ToArray());
        });
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _started)
        {
            foreach (var line in process.StandardError.Concat(process.StandardOutput))
            {
                output.WriteLine(line);
            }

            await process.DisposeAsync();
        }

        Directory.Delete(Dir, recursive: true);
    }
}
