using System.CommandLine;

namespace Interpose.Cli;

/// <summary>Entry point of the <c>interpose</c> command.</summary>
internal static class Program
{
    private static Task<int> Main(string[] args)
    {
        RuntimeTuning.Apply();
        var root = new RootCommand("Interpose: an HTTPS-intercepting proxy for .NET.");
        root.Options.Add(CliOptions.Home);
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(CaCommands.Create());
        root.Subcommands.Add(FlowsCommands.Create());
        root.Subcommands.Add(ReplayCommand.Create());
        root.Subcommands.Add(WebOptions.CreateWebCommand());

        var parsed = root.Parse(args);
        if (parsed.Errors.Count == 0)
        {
            try
            {
                // `run` takes what the command line leaves unset from config.json in the configuration directory.
                parsed = RunConfigFile.Merge(root, parsed, args);
            }
            catch (CliUsageException ex)
            {
                return Task.FromResult(CliErrors.Report(ex.Message));
            }
        }

        // Scripts are compiled at run time, which the natively compiled command cannot do: it becomes its JIT build.
        if (parsed.Errors.Count == 0 && parsed.CommandResult.Command.Name == "run" && ScriptOptions.Requested(parsed) && JitRelaunch.Needed)
        {
            return Task.FromResult(JitRelaunch.Exec(args));
        }

        // A usage error is one line on stderr and exit code 2, like every other user error. `run` handles Ctrl+C and
        // SIGTERM itself (graceful shutdown), so the parser must not install its own termination handling.
        return parsed.Errors.Count > 0
            ? Task.FromResult(CliErrors.Report(parsed.Errors[0].Message))
            : parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }
}
