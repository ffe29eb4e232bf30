using System.CommandLine;

namespace Interpose.Cli;

/// <summary>Entry point of the <c>interpose</c> command.</summary>
internal static class Program
{
    private static Task<int> Main(string[] args)
    {
        var root = new RootCommand("Interpose: an HTTPS-intercepting proxy for .NET.");
        return root.Parse(args).InvokeAsync();
    }
}
