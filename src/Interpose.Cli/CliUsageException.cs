namespace Interpose.Cli;

/// <summary>A mistake in the command line: reported as one line on stderr, exit code 2.</summary>
internal sealed class CliUsageException(string message) : Exception(message);
