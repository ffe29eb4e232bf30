using System.CommandLine;
using System.Net;
using Interpose.Core.Filters;
using Interpose.Proxy;
using Interpose.Proxy.Intercept;
using Interpose.Store;
using Interpose.Web;
using Microsoft.Extensions.Logging;

namespace Interpose.Cli;

/// <summary>
/// <c>run --web [HOST:PORT]</c> and <c>--intercept FILTER</c>: the web UI next to the proxy; and <c>interpose web FILE</c>,
/// a saved flow file in the same UI, read-only. ASP.NET Core starts only when asked for.
/// </summary>
internal static class WebOptions
{
    /// <summary><c>--web [HOST:PORT]</c>.</summary>
    public static Option<string?> Web { get; } = new("--web")
    {
        Description = $"Serve the web UI at HOST:PORT (default 127.0.0.1:{WebUiOptions.DefaultPort}); its URL, with a secret token, is printed at start",
        HelpName = "HOST:PORT",
        Arity = ArgumentArity.ZeroOrOne,
    };

    /// <summary><c>--intercept FILTER</c>.</summary>
    public static Option<string?> Intercept { get; } = new("--intercept")
    {
        Description = "Pause requests and responses that match this filter until resumed, edited or killed in the web UI (needs --web)",
        HelpName = "FILTER",
    };

    /// <summary>The environment variable that fixes the token (scripts, benchmarks); a random one otherwise.</summary>
    public const string TokenVariable = "INTERPOSE_WEB_TOKEN";

    /// <summary>The shortest token accepted from <see cref="TokenVariable"/>: 128 bits as base64url, as hard to guess
    /// as a GUID.</summary>
    private const int MinTokenLength = 22;

    /// <summary>Adds the options to <c>run</c>.</summary>
    public static void AddTo(Command command)
    {
        command.Options.Add(Web);
        command.Options.Add(Intercept);
    }

    /// <summary>Whether <c>--web</c> was given (with or without an address).</summary>
    public static bool IsGiven(ParseResult result) => result.GetResult(Web) is { Implicit: false };

    /// <summary>The UI's address: <c>--web</c>'s value, or 127.0.0.1:8081.</summary>
    /// <exception cref="CliUsageException">The value is not HOST:PORT, or not loopback without --allow-open-proxy.</exception>
    public static IPEndPoint EndPoint(ParseResult result, bool allowNonLoopback)
    {
        var text = result.GetValue(Web);
        IPEndPoint endPoint;
        try
        {
            endPoint = string.IsNullOrEmpty(text) ? new IPEndPoint(IPAddress.Loopback, WebUiOptions.DefaultPort) : RunCommand.ParseEndPoint(text);
        }
        catch (CliUsageException)
        {
            throw new CliUsageException($"--web: '{text}' is not HOST:PORT (an IP address and a port, e.g. 127.0.0.1:8081)");
        }

        return IPAddress.IsLoopback(endPoint.Address) || allowNonLoopback
            ? endPoint
            : throw new CliUsageException($"--web: {endPoint} is not a loopback address; anyone who reaches it and has the URL sees every flow. Add --allow-open-proxy to allow it");
    }

    /// <summary>The intercept addon for <c>run</c>, added to <paramref name="options"/>; null without <c>--web</c>.</summary>
    /// <exception cref="CliUsageException">--intercept without --web.</exception>
    /// <exception cref="FilterSyntaxException">The filter does not parse.</exception>
    public static InterceptAddon? AddIntercept(ParseResult result, ProxyOptions options, ILoggerFactory loggerFactory)
    {
        var filter = result.GetValue(Intercept);
        if (!IsGiven(result))
        {
            return filter is null ? null : throw new CliUsageException("--intercept needs --web (paused flows are resumed in the web UI)");
        }

        var intercept = new InterceptAddon(options.Timeouts.ResponseHead, options.TimeProvider, loggerFactory.CreateLogger("Interpose.Intercept"))
        {
            Filter = string.IsNullOrWhiteSpace(filter) ? null : RuleOptions.ParseFilter(Intercept, filter),
        };
        options.Addons.Add(intercept);

        // First of all addons: the UI's replay field is gone before any other addon, a rule or a script sees it; and the
        // UI's own requests through the proxy are tagged before the recorder and the intercept filter see them.
        options.Addons.Insert(0, new WebReplayMarker());
        options.Addons.Insert(0, new WebUiTrafficMarker());
        return intercept;
    }

    /// <summary>Starts the UI for a running proxy; prints its URL.</summary>
    public static async Task<WebUiServer> StartAsync(ParseResult result, ProxyServer server, ProxyOptions options, IFlowStore store, FlowFeed feed, InterceptAddon? intercept, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var proxy = server.Endpoints[0];
        var reachable = proxy.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, proxy.Port)
            : proxy.Address.Equals(IPAddress.IPv6Any) ? new IPEndPoint(IPAddress.IPv6Loopback, proxy.Port) : proxy;
        var web = new WebUiServer(new WebUiOptions
        {
            EndPoint = EndPoint(result, options.AllowOpenProxy),
            AllowNonLoopback = options.AllowOpenProxy,
            Store = store,
            Feed = feed,
            Intercept = intercept,
            ReplayMarker = options.Addons.OfType<WebReplayMarker>().FirstOrDefault(),
            ProxyUrl = new Uri("http://" + reachable),
            ProxyCertificateAuthority = server.CertificateAuthority!.Certificate,
            Token = FixedToken(),
            TimeProvider = options.TimeProvider,
        }, loggerFactory);
        await StartOrExplainAsync(web, cancellationToken);
        options.Addons.OfType<WebUiTrafficMarker>().FirstOrDefault()?.Serve(web.EndPoint);
        return web;
    }

    /// <summary>Builds <c>interpose web FILE [--web HOST:PORT]</c>.</summary>
    public static Command CreateWebCommand()
    {
        var file = new Argument<string>("FILE") { Description = "A flow store written by `run -w`" };
        var allowOpen = new Option<bool>("--allow-open-proxy") { Description = "Allow a non-loopback --web address" };
        var command = new Command("web", "Open a saved flow file read-only in the web UI") { file, Web, allowOpen };
        command.SetAction(async (result, cancellationToken) =>
        {
            try
            {
                await using var store = SqliteFlowStore.Open(result.GetValue(file)!, new SqliteFlowStoreOptions { ReadOnly = true });
                var allow = result.GetValue(allowOpen);
                await using var web = new WebUiServer(new WebUiOptions
                {
                    EndPoint = EndPoint(result, allow),
                    AllowNonLoopback = allow,
                    Store = store,
                    ReadOnly = true,
                    SourceName = Path.GetFileName(result.GetValue(file)),
                    Token = FixedToken(),
                });
                await StartOrExplainAsync(web, cancellationToken);
                await Console.Error.WriteLineAsync($"Web UI (read-only) at {web.Url}");
                await WaitForStopAsync(cancellationToken);
                return 0;
            }
            catch (Exception ex) when (CliErrors.IsUserError(ex))
            {
                return CliErrors.Report(ex.Message);
            }
        });
        return command;
    }

    /// <summary>Waits for Ctrl+C or SIGTERM.</summary>
    public static async Task WaitForStopAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Cancel);
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Cancel);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException)
        {
            // Asked to stop.
        }

        void Cancel(System.Runtime.InteropServices.PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
    }

    /// <summary>The token from <see cref="TokenVariable"/>, or null for a random one.</summary>
    /// <exception cref="CliUsageException">It is shorter than <see cref="MinTokenLength"/> or not URL-safe.</exception>
    private static string? FixedToken()
    {
        var token = Environment.GetEnvironmentVariable(TokenVariable);
        if (string.IsNullOrEmpty(token))
        {
            return null;
        }

        return token.Length >= MinTokenLength && token.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? token
            : throw new CliUsageException($"{TokenVariable}: at least {MinTokenLength} characters from A-Z, a-z, 0-9, - and _");
    }

    private static async Task StartOrExplainAsync(WebUiServer web, CancellationToken cancellationToken)
    {
        try
        {
            await web.StartAsync(cancellationToken);
        }
        catch (IOException ex)
        {
            throw new CliUsageException("--web: cannot listen: " + ex.Message);
        }
    }
}
