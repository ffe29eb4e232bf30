using System.CommandLine;
using System.Globalization;
using Interpose.Core.Flows;
using Interpose.Proxy;
using Interpose.Store;
using Interpose.Web;
using Microsoft.Extensions.Logging;

namespace Interpose.Cli;

/// <summary>
/// <c>run -w FILE</c> (<c>--save</c>, mitmproxy's name) and <c>--save-body-limit</c>: record every flow into a flow store.
/// Kept out of RunCommand so that its options stay one line there.
/// </summary>
internal static class SaveOptions
{
    /// <summary><c>-w FILE</c>: the flow store to record into (created when missing, appended to otherwise).</summary>
    public static Option<string?> Save { get; } = new("--save", "-w")
    {
        Description = "Record every flow into this flow store (SQLite; created if missing, appended to otherwise); read it with `interpose flows`",
        HelpName = "FILE",
    };

    /// <summary><c>--save-body-limit BYTES|all</c>: the most bytes of each body recorded.</summary>
    public static Option<string?> BodyLimit { get; } = new("--save-body-limit")
    {
        Description = $"Most bytes of each body recorded with -w (beyond it: length and SHA-256 only), or all (default {BodyCapture.DefaultMaxBytes})",
        HelpName = "BYTES|all",
    };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public static void AddTo(Command command)
    {
        command.Options.Add(Save);
        command.Options.Add(BodyLimit);
    }

    /// <summary>
    /// Opens the store and adds its recorder to <paramref name="options"/> when <c>-w</c> was given; null otherwise.
    /// Dispose the result after the server stopped: it writes what is queued and closes the file.
    /// </summary>
    /// <exception cref="CliUsageException">--save-body-limit is malformed, or given without -w.</exception>
    /// <exception cref="FlowStoreException">The file is not a flow store, is newer, corrupt, or being recorded into.</exception>
    /// <param name="result">The command line.</param>
    /// <param name="options">The proxy's options, which get the recorder.</param>
    /// <param name="loggerFactory">Where the store and recorder log.</param>
    /// <param name="feed">With the web UI: the store's observer, which announces the flows it keeps. Without -w the flows are then kept in
    /// memory (<see cref="MemoryFlowStore"/>, bounded, gone when the process ends), and the stale temporary store files
    /// of earlier versions are swept (<see cref="TemporaryFlowStores"/>).</param>
    public static Recording? Start(ParseResult result, ProxyOptions options, ILoggerFactory loggerFactory, FlowFeed? feed = null)
    {
        var path = result.GetValue(Save);
        var limitText = result.GetValue(BodyLimit);
        if (path is null && feed is null)
        {
            return limitText is null ? null : throw new CliUsageException("--save-body-limit needs -w FILE");
        }

        var limit = ParseBodyLimit(limitText);
        IFlowStore store;
        IFlowSink sink;
        if (path is null)
        {
            // --web without -w: flows in memory, each in a compact form (no SQLite, no file: the UI's cost budget, issue
            // 17); the flows evicted past the caps leave the browsers' lists too.
            TemporaryFlowStores.Sweep(CliOptions.ResolveHome(result));
            var memory = new MemoryFlowStore(logger: loggerFactory.CreateLogger("Interpose.Store"), observer: feed);
            store = memory;
            sink = memory;
        }
        else
        {
            var sqlite = SqliteFlowStore.Open(path, logger: loggerFactory.CreateLogger("Interpose.Store"), observer: feed);
            store = sqlite;
            sink = sqlite;
        }

        var recorder = new FlowRecorder(sink, new FlowRecorderOptions { MaxBodyBytes = limit }, loggerFactory.CreateLogger("Interpose.Recorder"));
        options.Addons.Add(recorder);
        return new Recording(store, recorder);
    }

    /// <summary>BYTES (a non-negative integer) or <c>all</c> (null: no cap); the default when null.</summary>
    /// <exception cref="CliUsageException">The text is neither.</exception>
    internal static int? ParseBodyLimit(string? text)
    {
        if (text is null)
        {
            return BodyCapture.DefaultMaxBytes;
        }

        if (text.Equals("all", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes)
            ? bytes
            : throw new CliUsageException($"--save-body-limit: '{text}' is not a number of bytes (0 to {int.MaxValue}) or all");
    }

    /// <summary>A store being recorded into; disposing it writes what is queued and closes the store.</summary>
    internal sealed class Recording(IFlowStore store, FlowRecorder recorder) : IAsyncDisposable
    {
        public IFlowStore Store => store;

        public async ValueTask DisposeAsync()
        {
            await recorder.DisposeAsync();
            await store.DisposeAsync();
        }
    }
}
