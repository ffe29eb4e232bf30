namespace Interpose.Store;

/// <summary>
/// A flow store file cannot be used: it is not one, it is from a newer schema, it is corrupt, or another process is
/// recording into it (<see cref="Problem"/>). The file was not changed. The message is one line, fit for a user.
/// </summary>
public sealed class FlowStoreException : IOException
{
    /// <summary>Creates the exception.</summary>
    public FlowStoreException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message.</param>
    public FlowStoreException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public FlowStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="problem">What is wrong with it.</param>
    /// <param name="detail">What exactly, in a few words.</param>
    /// <param name="innerException">The cause, when there is one.</param>
    public FlowStoreException(string path, FlowStoreProblem problem, string detail, Exception? innerException = null)
        : base($"{path}: {detail}", innerException)
    {
        Path = path;
        Problem = problem;
    }

    /// <summary>The file.</summary>
    public string? Path { get; }

    /// <summary>What is wrong with it.</summary>
    public FlowStoreProblem Problem { get; }
}
