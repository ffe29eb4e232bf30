namespace Interpose.Cli;

/// <summary>Exit codes other than <see cref="CliErrors.UserError"/>.</summary>
internal static class CliExit
{
    /// <summary>The command did what was asked.</summary>
    public const int Success = 0;

    /// <summary>The command ran but could not do all of it (for example, part of <c>ca trust --install</c>).</summary>
    public const int Incomplete = 1;
}
