using System.CommandLine;
using Interpose.Certificates;

namespace Interpose.Cli;

/// <summary>Options every command understands.</summary>
internal static class CliOptions
{
    /// <summary><c>--home DIR</c>: the configuration directory, overriding <c>$INTERPOSE_HOME</c> and the XDG default.</summary>
    public static Option<string?> Home { get; } = new("--home")
    {
        Description = "Configuration directory (default: $INTERPOSE_HOME, else $XDG_CONFIG_HOME/interpose, else ~/.config/interpose).",
        HelpName = "DIR",
        Recursive = true,
    };

    /// <summary>The configuration directory this invocation uses.</summary>
    public static string ResolveHome(ParseResult result) => result.GetValue(Home) is { Length: > 0 } home ? Path.GetFullPath(home) : InterposeHome.Resolve();
}
