using System.CommandLine;
using Interpose.Core.Flows;
using Interpose.Proxy;
using Interpose.Proxy.Rules;
using Interpose.Store;
using Microsoft.Extensions.Logging;

namespace Interpose.Cli;

/// <summary>
/// <c>run -S FILE</c> (<c>--server-replay</c>) and its <c>--server-replay-*</c> flags, mitmproxy's names: answer
/// requests from recorded flows (<see cref="ServerReplayAddon"/>). Kept out of RunCommand so that its options stay one
/// line there.
/// </summary>
internal static class ServerReplayFlags
{
    public static Option<string[]> Files { get; } = new("--server-replay", "-S")
    {
        Description = "Answer requests that match a flow recorded in FILE (a flow store) with its response, without contacting the origin; repeatable",
        HelpName = "FILE",
    };

    public static Option<string[]> IgnoreParams { get; } = new("--server-replay-ignore-params")
    {
        Description = "Leave this query parameter out of the match; repeatable",
        HelpName = "NAME",
    };

    public static Option<bool> IgnoreContent { get; } = new("--server-replay-ignore-content") { Description = "Leave the request body out of the match" };

    public static Option<bool> IgnoreHost { get; } = new("--server-replay-ignore-host") { Description = "Leave the host out of the match (scheme and port still count)" };

    public static Option<bool> Reuse { get; } = new("--server-replay-reuse")
    {
        Description = "Keep serving the last recorded response of a request once the others were served (default: each once, in order)",
    };

    public static Option<string?> Extra { get; } = new("--server-replay-extra")
    {
        Description = "What to do with requests that match no recorded flow: forward (default), kill, or a status code to answer with",
        HelpName = "forward|kill|STATUS",
    };

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public static void AddTo(Command command)
    {
        foreach (var option in new Option[] { Files, IgnoreParams, IgnoreContent, IgnoreHost, Reuse, Extra })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>Loads the recorded flows and adds the addon to <paramref name="options"/> when <c>-S</c> was given.</summary>
    /// <exception cref="CliUsageException">A --server-replay-* flag without -S, a bad --server-replay-extra, or a
    /// recording over the in-memory bounds.</exception>
    /// <exception cref="FlowStoreException">A file is not a flow store, is newer, or is corrupt.</exception>
    public static async Task ApplyAsync(ParseResult result, ProxyOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var (files, replayOptions) = Parse(result);
        if (files.Length == 0)
        {
            return;
        }

        var logger = loggerFactory.CreateLogger("Interpose.ServerReplay");
        try
        {
            var addon = await ServerReplayAddon.LoadAsync(ReadAllAsync(files, cancellationToken), replayOptions, logger, cancellationToken);
            CliLog.ServerReplayLoaded(logger, addon.Remaining, files);
            options.Addons.Add(addon);
        }
        catch (InvalidDataException ex)
        {
            throw new CliUsageException($"{RunConfigFile.Describe(Files)}: {ex.Message}");
        }
    }

    /// <summary>What <c>run --options</c> checks: the flags as <see cref="ApplyAsync"/> reads them, and each file opened
    /// as a flow store (its schema read, its flows not loaded).</summary>
    /// <exception cref="CliUsageException">A --server-replay-* flag without -S, or a bad --server-replay-extra.</exception>
    /// <exception cref="FlowStoreException">A file is not a flow store, is newer, or is corrupt.</exception>
    public static async Task CheckAsync(ParseResult result)
    {
        foreach (var file in Parse(result).Files)
        {
            await using var store = SqliteFlowStore.Open(file, new SqliteFlowStoreOptions { ReadOnly = true });
        }
    }

    private static (string[] Files, ServerReplayOptions Options) Parse(ParseResult result)
    {
        var files = result.GetValue(Files) ?? [];
        var extraText = result.GetValue(Extra);
        var replayOptions = new ServerReplayOptions
        {
            IgnoreParams = result.GetValue(IgnoreParams) ?? [],
            IgnoreContent = result.GetValue(IgnoreContent),
            IgnoreHost = result.GetValue(IgnoreHost),
            Reuse = result.GetValue(Reuse),
            Extra = extraText is null ? ServerReplayExtra.Forward : ParseExtra(extraText),
        };
        if (files.Length == 0 && (extraText is not null || replayOptions.IgnoreParams.Count > 0 || replayOptions.IgnoreContent || replayOptions.IgnoreHost || replayOptions.Reuse))
        {
            throw new CliUsageException("the --server-replay-* flags need -S FILE");
        }

        return (files, replayOptions);
    }

    private static ServerReplayExtra ParseExtra(string text)
    {
        try
        {
            return ServerReplayExtra.Parse(text);
        }
        catch (FormatException ex)
        {
            throw new CliUsageException($"{RunConfigFile.Describe(Extra)}: {ex.Message}");
        }
    }

    /// <summary>The flows of each file in turn, with bodies, each file opened read-only.</summary>
    private static async IAsyncEnumerable<Flow> ReadAllAsync(string[] files, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var file in files)
        {
            await using var store = SqliteFlowStore.Open(file, new SqliteFlowStoreOptions { ReadOnly = true });
            await foreach (var flow in store.QueryAsync(new FlowQuery { IncludeBodies = true }, cancellationToken))
            {
                yield return flow;
            }
        }
    }
}
