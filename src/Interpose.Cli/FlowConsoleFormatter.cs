using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Interpose.Cli;

/// <summary>
/// Console lines as mitmdump prints them: a flow line is just the flow; other events carry their level.
/// </summary>
internal sealed class FlowConsoleFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "interpose";

    public override void Write<TState>(in LogEntry<TState> logEntry, Microsoft.Extensions.Logging.IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (logEntry.Category != "Interpose.Flow")
        {
            textWriter.Write(logEntry.LogLevel switch
            {
                LogLevel.Trace => "trace: ",
                LogLevel.Debug => "debug: ",
                LogLevel.Information => "info: ",
                LogLevel.Warning => "warn: ",
                LogLevel.Error => "error: ",
                _ => "crit: ",
            });
        }

        textWriter.Write(message);
        if (logEntry.Exception is { } exception)
        {
            textWriter.Write(logEntry.LogLevel >= LogLevel.Error ? Environment.NewLine + exception : " (" + exception.Message + ")");
        }

        textWriter.Write(Environment.NewLine);
    }
}
