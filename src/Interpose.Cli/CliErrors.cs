namespace Interpose.Cli;

/// <summary>How the command reports a user error: one line on stderr, no stack trace, a non-zero exit code.</summary>
internal static class CliErrors
{
    /// <summary>Exit code for a user error: bad option, missing or unsafe file, refused certificate (as in getopt tools).</summary>
    public const int UserError = 2;

    /// <summary>Writes <c>interpose: MESSAGE</c> as one line to stderr and returns <see cref="UserError"/>.</summary>
    public static int Report(string message)
    {
        Console.Error.WriteLine("interpose: " + OneLine(message));
        return UserError;
    }

    /// <summary>Whether an exception is the user's to fix (and so reported in one line) rather than a defect.</summary>
    public static bool IsUserError(Exception exception) =>
        exception is Certificates.CertificateException or IOException or UnauthorizedAccessException or CliUsageException
            or System.Net.Sockets.SocketException;

    // Line breaks and tabs (System.CommandLine puts tabs in its lists) become single spaces.
    private static string OneLine(string message) => string.Join(' ', message.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
}
