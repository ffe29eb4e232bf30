using System.CommandLine;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Flows.Har;
using Interpose.Store;

namespace Interpose.Cli;

/// <summary>
/// <c>interpose flows list|show|export|import</c>: read a flow store recorded with <c>run -w</c> (always read-only),
/// or fill one from a HAR file. Thin: each is a call into <see cref="SqliteFlowStore"/> plus printing.
/// </summary>
internal static class FlowsCommands
{
    /// <summary>Builds the <c>flows</c> command and its subcommands.</summary>
    public static Command Create()
    {
        var flows = new Command("flows", "Read flows recorded with `run -w FILE`: list, show, export (HAR, curl), import HAR.");
        flows.Subcommands.Add(CreateList());
        flows.Subcommands.Add(CreateShow());
        flows.Subcommands.Add(CreateExport());
        flows.Subcommands.Add(CreateImport());
        return flows;
    }

    private static Argument<string> FileArgument() => new("FILE") { Description = "The flow store (written by `run -w`)" };

    /// <summary>The filter as words: <c>flows list f.db ~c 404</c> and <c>flows list f.db "~c 404"</c> mean the same.</summary>
    private static Argument<string[]> FilterArgument() => new("FILTER")
    {
        Description = "A filter expression in mitmproxy's language (docs/filters.md), e.g. '~d example.com & !~c 200'",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private static Command CreateList()
    {
        var file = FileArgument();
        var filter = FilterArgument();
        var json = new Option<bool>("--json") { Description = "One JSON object per line: id, startedAt, method, url, status (null without a response), ..." };
        var command = new Command("list", "One line per flow, like the flow log of `run`; the id first.") { file, filter, json };
        SetGuardedAction(command, async (result, cancellationToken) =>
        {
            var parsed = ParseFilter(result.GetValue(filter));
            await using var store = OpenForReading(result.GetValue(file)!);
            var asJson = result.GetValue(json);
            var output = Console.OpenStandardOutput();
            await using var writer = new StreamWriter(output, new UTF8Encoding(false), 64 * 1024);
            await foreach (var flow in store.ListAsync(parsed, cancellationToken))
            {
                await writer.WriteLineAsync(asJson ? FlowText.SummaryJson(flow) : FlowText.Summary(flow));
            }

            return CliExit.Success;
        });
        return command;
    }

    private static Command CreateShow()
    {
        var file = FileArgument();
        var id = new Argument<string>("ID") { Description = "The flow's id, as `flows list` prints it" };
        var command = new Command("show", "Print one flow: heads, timings, TLS, and bodies decoded and pretty-printed (JSON, form, text; hex for binary).") { file, id };
        SetGuardedAction(command, async (result, cancellationToken) =>
        {
            var text = result.GetValue(id)!;
            if (!Guid.TryParse(text, out var guid))
            {
                throw new CliUsageException($"'{text}' is not a flow id (a GUID as `interpose flows list` prints it)");
            }

            await using var store = OpenForReading(result.GetValue(file)!);
            var flow = await store.GetAsync(guid, cancellationToken) ?? throw new CliUsageException($"no flow {guid} in {store.Path}");
            await Console.Out.WriteAsync(FlowText.Details(flow));
            return CliExit.Success;
        });
        return command;
    }

    private static Command CreateExport()
    {
        var file = FileArgument();
        var filter = FilterArgument();
        var format = new Option<string>("--format") { Description = "har (HAR 1.2, docs/har.md) or curl (one command per request)", Required = true };
        format.AcceptOnlyFromAmong("har", "curl");
        var output = new Option<string?>("--output", "-o") { Description = "Write here instead of standard output", HelpName = "OUT" };
        var command = new Command("export", "Export the flows (those matching FILTER) as HAR or as curl commands.") { file, filter, format, output };
        SetGuardedAction(command, async (result, cancellationToken) =>
        {
            var parsed = ParseFilter(result.GetValue(filter));
            await using var store = OpenForReading(result.GetValue(file)!);
            var flows = HttpFlows(store, new FlowQuery { Filter = parsed, IncludeBodies = true }, cancellationToken);

            // Both formats are written flow by flow as the store yields the flows, so an export holds one flow's bodies
            // at a time.
            var har = result.GetValue(format) == "har";
            Func<Stream, Task<int>> write = har
                ? stream => HarFile.ExportAsync(flows, stream, cancellationToken)
                : async stream =>
                {
                    await using var writer = new StreamWriter(stream, new UTF8Encoding(false), 64 * 1024, leaveOpen: true);
                    return await CurlScript.WriteScriptAsync(flows, writer, cancellationToken);
                };
            if (result.GetValue(output) is { } path)
            {
                // Recorded flows carry cookies and tokens: the export is owner-only, as the store is. The file is
                // written beside OUT and renamed over it once complete: a failure midway leaves OUT as it was.
                var count = await ExportFile.WriteAsync(path, secret: true, write, cancellationToken);
                await Console.Error.WriteLineAsync($"Exported {count} flows to {path}");
            }
            else
            {
                await using var stdout = Console.OpenStandardOutput();
                try
                {
                    await write(stdout);
                }
                catch (Exception ex) when (CliErrors.IsUserError(ex))
                {
                    // The flows before the failure (a damaged row, a closed pipe) are already out and cannot be taken
                    // back: say that what was written is cut short, not only why.
                    return CliErrors.Report($"the {(har ? "HAR" : "curl script")} written to standard output is incomplete: {ex.Message}");
                }
            }

            return CliExit.Success;
        });
        return command;
    }

    /// <summary>The HTTP flows of a query: tunnels have no HTTP exchange to export.</summary>
    private static async IAsyncEnumerable<HttpFlow> HttpFlows(SqliteFlowStore store, FlowQuery query, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var flow in store.QueryAsync(query, cancellationToken))
        {
            if (flow is HttpFlow http)
            {
                yield return http;
            }
        }
    }

    private static Command CreateImport()
    {
        var har = new Argument<string>("FILE.har") { Description = "A HAR 1.2 file (from Interpose, a browser's DevTools, ...)" };
        var output = new Option<string>("--output", "-o") { Description = "The flow store to add the flows to (created if missing)", HelpName = "FILE", Required = true };
        var command = new Command("import", "Add the entries of a HAR file to a flow store.") { har, output };
        SetGuardedAction(command, async (result, cancellationToken) =>
        {
            var bytes = await File.ReadAllBytesAsync(result.GetValue(har)!, cancellationToken);
            var flows = HarFile.Import(bytes);
            await using var store = SqliteFlowStore.Open(result.GetValue(output)!);
            await store.AppendAsync([.. flows], cancellationToken);
            await Console.Error.WriteLineAsync($"Imported {flows.Count} flows into {store.Path}");
            return CliExit.Success;
        });
        return command;
    }

    private static SqliteFlowStore OpenForReading(string path) => SqliteFlowStore.Open(path, new SqliteFlowStoreOptions { ReadOnly = true });

    /// <summary>The filter of the words given, or null for none.</summary>
    /// <exception cref="FilterSyntaxException">It does not parse.</exception>
    internal static FlowFilter? ParseFilter(string[]? words) =>
        words is { Length: > 0 } ? FlowFilter.Parse(string.Join(' ', words)) : null;

    /// <summary>Runs <paramref name="action"/>, turning a user's mistake (a bad file, filter or HAR) into one line and exit 2.</summary>
    internal static void SetGuardedAction(Command command, Func<ParseResult, CancellationToken, Task<int>> action) =>
        command.SetAction(async (result, cancellationToken) =>
        {
            try
            {
                return await action(result, cancellationToken);
            }
            catch (FilterSyntaxException ex)
            {
                // The position and what was expected, then the expression with a caret under the spot.
                var code = CliErrors.Report($"bad filter at character {ex.Position + 1}: expected {ex.Expected}");
                await Console.Error.WriteLineAsync("  " + ex.Expression);
                await Console.Error.WriteLineAsync("  " + new string(' ', Math.Min(ex.Position, ex.Expression.Length)) + "^");
                return code;
            }
            catch (HarFormatException ex)
            {
                return CliErrors.Report(ex.Message);
            }
            catch (JsonException ex)
            {
                return CliErrors.Report("not a HAR file: " + ex.Message);
            }
            catch (Exception ex) when (CliErrors.IsUserError(ex))
            {
                return CliErrors.Report(ex.Message);
            }
        });
}
