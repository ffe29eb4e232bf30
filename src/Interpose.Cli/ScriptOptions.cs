using System.CommandLine;
using System.Diagnostics.CodeAnalysis;
using Interpose.Proxy;
using Interpose.Scripting;
using Microsoft.Extensions.Logging;

namespace Interpose.Cli;

/// <summary>
/// <c>interpose run -s FILE.cs</c> (mitmproxy's <c>-s/--scripts</c>): C# scripts defining addons, compiled at start
/// and reloaded when saved (<see cref="ScriptHost"/>). Compiling needs the JIT: the natively compiled command hands
/// the whole run to its JIT build first (<see cref="JitRelaunch"/>), so this code only ever runs under the JIT.
/// </summary>
internal static class ScriptOptions
{
    /// <summary>
    /// The feature switch that is false in the natively compiled command (Interpose.Cli.csproj sets it for a
    /// RID-specific publish), where the trimmer then removes the scripting code and Roslyn along with it.
    /// RuntimeFeature.IsDynamicCodeSupported cannot tell: PublishAot gives the JIT build the same false value.
    /// </summary>
    public const string SupportSwitch = "Interpose.Cli.Scripts.IsSupported";

    /// <summary>Whether this build can compile and load scripts: true under the JIT, false in the native binary.</summary>
    [FeatureSwitchDefinition(SupportSwitch)]
    public static bool IsSupported => !AppContext.TryGetSwitch(SupportSwitch, out var on) || on;

    public static Option<string[]> Scripts { get; } = new("--scripts", "-s")
    {
        Description = "Load a C# script (a .cs file defining ProxyAddon subclasses), reloaded when saved; repeatable",
        HelpName = "FILE",
    };

    public static void AddTo(Command command) => command.Options.Add(Scripts);

    /// <summary>Whether this run asks for scripts (from the command line or config.json).</summary>
    public static bool Requested(ParseResult result) => result.GetValue(Scripts) is { Length: > 0 };

    /// <summary>Compiles and loads the scripts, adding their addons after the others; null when none were given.</summary>
    /// <exception cref="CliUsageException">A script does not compile, defines no addon, or cannot be read.</exception>
    public static ScriptHost? Load(ParseResult result, ProxyOptions options, ILoggerFactory loggerFactory)
    {
        var paths = result.GetValue(Scripts) ?? [];
        if (paths.Length == 0)
        {
            return null;
        }

        // The native build relaunched itself as the JIT build before getting here (Program.Main).
        return IsSupported
            ? LoadWithJit(paths, options, loggerFactory)
            : throw new CliUsageException("-s: C# scripts need the JIT build of interpose (this one is natively compiled)");
    }

    private static ScriptHost LoadWithJit(string[] paths, ProxyOptions options, ILoggerFactory loggerFactory)
    {
        foreach (var path in paths)
        {
            if (!File.Exists(path))
            {
                throw new CliUsageException($"-s: {path}: no such file");
            }
        }

        var host = new ScriptHost(paths, loggerFactory);
        try
        {
            host.Load();
        }
        catch (ScriptCompilationException ex)
        {
            // Every error on its own line, as a compiler prints them: file(line,column): error CSxxxx: message.
            foreach (var error in ex.Errors)
            {
                Console.Error.WriteLine("interpose: " + error);
            }

            throw new CliUsageException($"-s: {ex.Path}: {ex.Errors.Count} error(s); not started");
        }

        foreach (var addon in host.Addons)
        {
            options.Addons.Add(addon);
        }

        return host;
    }

    /// <summary>Reloads the scripts on save, giving the server every other addon followed by the scripts' new ones.</summary>
    public static void Watch(ScriptHost host, ProxyServer server, IReadOnlyList<ProxyAddon> before) =>
        host.Watch(addons => server.ReplaceAddons([.. before, .. addons]));
}
