namespace Interpose.Certificates;

/// <summary>Finds Interpose's configuration directory, where the CA lives.</summary>
public static class InterposeHome
{
    /// <summary>The environment variable that overrides the configuration directory.</summary>
    public const string EnvironmentVariable = "INTERPOSE_HOME";

    /// <summary>
    /// Returns <c>$INTERPOSE_HOME</c> if set, else <c>$XDG_CONFIG_HOME/interpose</c> (XDG Base Directory
    /// Specification), else <c>~/.config/interpose</c>. The directory is not created.
    /// </summary>
    /// <returns>An absolute directory path.</returns>
    /// <exception cref="CertificateException">No variable is set and the user's home directory is unknown.</exception>
    public static string Resolve()
    {
        var home = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(home))
        {
            return Path.GetFullPath(home);
        }

        // XDG Base Directory Specification: "If $XDG_CONFIG_HOME is either not set or empty, a default equal to
        // $HOME/.config should be used", and a relative value is invalid and ignored.
        var xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathFullyQualified(xdg))
        {
            return Path.Combine(xdg, "interpose");
        }

        var profile = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(profile))
        {
            throw new CertificateException($"Cannot find the home directory; set {EnvironmentVariable} to the directory Interpose should use.");
        }

        return Path.Combine(profile, ".config", "interpose");
    }
}
