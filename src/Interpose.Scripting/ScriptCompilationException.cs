namespace Interpose.Scripting;

/// <summary>A script could not be compiled or loaded: each of <see cref="Errors"/> names the file, line and column.</summary>
public sealed class ScriptCompilationException : Exception
{
    /// <summary>Creates the exception from the compiler's error lines.</summary>
    /// <param name="path">The script.</param>
    /// <param name="errors">One line per error, as <c>FILE(LINE,COLUMN): error CS1002: ; expected</c>.</param>
    public ScriptCompilationException(string path, IReadOnlyList<string> errors)
        : base(string.Join(Environment.NewLine, errors))
    {
        Path = path;
        Errors = errors;
    }

    /// <summary>Creates the exception with one message.</summary>
    /// <param name="message">The message.</param>
    public ScriptCompilationException(string message)
        : this(string.Empty, [message])
    {
    }

    /// <summary>Creates the exception with no details.</summary>
    public ScriptCompilationException()
        : this("the script could not be compiled")
    {
    }

    /// <summary>Creates the exception wrapping another.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ScriptCompilationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Path = string.Empty;
        Errors = [message];
    }

    /// <summary>The script that failed.</summary>
    public string Path { get; }

    /// <summary>The errors, one line each, with file, line and column where the compiler gives them.</summary>
    public IReadOnlyList<string> Errors { get; }
}
