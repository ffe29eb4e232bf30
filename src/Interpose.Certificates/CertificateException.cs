namespace Interpose.Certificates;

/// <summary>
/// A problem the user can fix: an unreadable or malformed certificate or key file, a key file open to other users,
/// a certificate that is not a CA, a key that does not match its certificate, or a host name that cannot be certified.
/// </summary>
/// <remarks>The message is one line that says what to do (for example, the <c>chmod</c> to run); it is meant to be shown as is.</remarks>
public sealed class CertificateException : Exception
{
    /// <summary>Creates an exception with no message.</summary>
    public CertificateException()
    {
    }

    /// <summary>Creates an exception with a one-line message for the user.</summary>
    /// <param name="message">What went wrong and what to do about it, on one line.</param>
    public CertificateException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a one-line message for the user and the underlying cause.</summary>
    /// <param name="message">What went wrong and what to do about it, on one line.</param>
    /// <param name="innerException">The underlying cause.</param>
    public CertificateException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
