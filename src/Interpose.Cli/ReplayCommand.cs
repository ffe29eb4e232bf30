using System.CommandLine;
using Interpose.Core.Flows;
using Interpose.Proxy;
using Interpose.Store;
using Microsoft.Extensions.Logging;

namespace Interpose.Cli;

/// <summary>
/// <c>interpose replay FILE [FILTER] [-w OUT]</c>: client replay (mitmproxy's <c>-C</c>): send the recorded requests
/// again to their origins, in recorded order, one at a time, through <see cref="FlowReplayer"/> (an in-process proxy,
/// so they go out as the proxy forwarded the originals), print the flow line of each, record the new exchanges to OUT.
/// Exit code 1 when any replay got no response.
/// </summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "The flow store to replay (written by `run -w`)" };
        var filter = new Argument<string[]>("FILTER")
        {
            Description = "Replay only the flows matching this filter (mitmproxy's language, docs/filters.md)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var sslInsecure = new Option<bool>("--ssl-insecure", "-k") { Description = "Do not validate origin certificates (dangerous)" };
        var upstreamCa = new Option<FileInfo?>("--upstream-ca") { Description = "Validate origin certificates against these PEM roots instead of the system store" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No flow lines; only failures" };
        var command = new Command("replay", "Client replay: send the recorded requests (those matching FILTER) again to their origins, in order")
        {
            file, filter, sslInsecure, upstreamCa, quiet,
        };
        command.Options.Add(SaveOptions.Save);
        command.Options.Add(SaveOptions.BodyLimit);
        FlowsCommands.SetGuardedAction(command, async (result, cancellationToken) =>
        {
            var parsed = FlowsCommands.ParseFilter(result.GetValue(filter));
            var options = new ProxyOptions { SslInsecure = result.GetValue(sslInsecure) };
            if (result.GetValue(upstreamCa) is { } upstream)
            {
                options.UpstreamTrustedRoots.AddRange(RunCommand.LoadPemBundle(upstream));
            }

            // The flow line of each replay, and the proxy's warnings; not its start and stop lines.
            using var loggerFactory = RunCommand.CreateLoggerFactory(
                result.GetValue(quiet) ? LogLevel.Warning : LogLevel.Information,
                json: false,
                builder => builder.AddFilter((category, level) => level >= LogLevel.Warning || category == "Interpose.Flow"));

            // The matching ids first, so that a bad file or filter is reported before anything is sent; then each flow
            // with its bodies when its turn comes: a recording of any size replays in the memory of one flow at a time,
            // where holding them all took the whole store's bodies (up to the body cap each) at once.
            List<Guid> ids = [];
            await using var store = SqliteFlowStore.Open(result.GetValue(file)!, new SqliteFlowStoreOptions { ReadOnly = true });
            await foreach (var flow in store.QueryAsync(new FlowQuery { Filter = parsed }, cancellationToken))
            {
                if (flow is HttpFlow)
                {
                    ids.Add(flow.Id);
                }
            }

            await using var recording = SaveOptions.Start(result, options, loggerFactory);
            var failed = 0;
            var replayed = 0;
            await using (var replayer = await FlowReplayer.StartAsync(options, loggerFactory, cancellationToken))
            {
                foreach (var id in ids)
                {
                    if (await store.GetAsync(id, cancellationToken) is not HttpFlow flow)
                    {
                        // Deleted from the file since it was listed (another process): nothing left to send.
                        continue;
                    }

                    replayed++;
                    var outcome = await replayer.ReplayAsync(flow, cancellationToken);
                    if (!outcome.Succeeded)
                    {
                        failed++;
                        await Console.Error.WriteLineAsync($"interpose: replay of {flow.Id} ({flow.Request.Method} {flow.Request.Url}) failed: {outcome.Error}");
                    }
                }
            }

            await Console.Error.WriteLineAsync($"Replayed {replayed} flows, {failed} failed");
            return failed == 0 ? CliExit.Success : CliExit.Incomplete;
        });
        return command;
    }
}
