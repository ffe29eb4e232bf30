using System.Globalization;
using System.Net;

namespace Interpose.Proxy;

/// <summary>
/// Proxy authentication (RFC 9110 §11.7): when at least one user is configured, every request and every CONNECT must
/// carry <c>Proxy-Authorization: Basic</c> (RFC 7617) with one of these credentials, or it is answered 407 before any
/// hook runs and before anything is sent to an origin.
/// </summary>
public sealed class ProxyAuthentication
{
    /// <summary>The protection space named in <c>Proxy-Authenticate</c> (RFC 9110 §11.5).</summary>
    public const string Realm = "Interpose";

    /// <summary>The accepted credentials. Empty (the default) means no authentication is required.</summary>
    public IList<NetworkCredential> Users { get; } = [];

    /// <summary>Whether authentication is required, i.e. at least one user is configured.</summary>
    public bool IsEnabled => Users.Count > 0;

    /// <summary>Adds one user from <c>user:password</c>, as curl's <c>--proxy-user</c>.</summary>
    /// <param name="userColonPassword">The user name, a colon, the password (which may itself contain colons).</param>
    /// <exception cref="ArgumentException">There is no colon, the user name is empty or contains a control character.</exception>
    public void Add(string userColonPassword)
    {
        ArgumentNullException.ThrowIfNull(userColonPassword);

        // RFC 7617 §2: the user-id cannot contain a colon; the password can. A CTL in either is not allowed.
        var colon = userColonPassword.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw new ArgumentException("expected user:password with a non-empty user name", nameof(userColonPassword));
        }

        if (userColonPassword.Any(char.IsControl))
        {
            throw new ArgumentException("user names and passwords cannot contain control characters (RFC 7617 §2)", nameof(userColonPassword));
        }

        Users.Add(new NetworkCredential(userColonPassword[..colon], userColonPassword[(colon + 1)..]));
    }

    /// <summary>
    /// Adds the users of a file of <c>user:password</c> lines; blank lines and lines starting with <c>#</c> are skipped.
    /// </summary>
    /// <param name="path">The file to read (UTF-8).</param>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be opened.</exception>
    /// <exception cref="FormatException">A line is not <c>user:password</c>; the message names the line, never its content.</exception>
    public void AddFromFile(string path)
    {
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            var trimmed = line.TrimEnd('\r');
            if (trimmed.Length == 0 || trimmed[0] == '#')
            {
                continue;
            }

            try
            {
                Add(trimmed);
            }
            catch (ArgumentException ex)
            {
                throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"{path}:{number}: {ex.Message.Split(" (Parameter", 2)[0]}"), ex);
            }
        }
    }
}
