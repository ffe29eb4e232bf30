using System.Collections.Frozen;

namespace Interpose.Proxy.Rules;

/// <summary>Paths below a directory that a URL names, and the media type of a file: what map-local needs of the file system.</summary>
internal static class LocalFiles
{
    /// <summary>
    /// Symbolic links followed while resolving one path at most: Linux's own limit (MAXSYMLINKS, 40), past which
    /// <c>realpath(3)</c> fails with ELOOP.
    /// </summary>
    private const int MaxSymbolicLinks = 40;

    /// <summary>The common extensions and their media types (a subset of the IANA registry, as Python's mimetypes knows them).</summary>
    private static readonly FrozenDictionary<string, string> MediaTypes = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html",
        [".htm"] = "text/html",
        [".css"] = "text/css",
        [".js"] = "text/javascript",
        [".mjs"] = "text/javascript",
        [".json"] = "application/json",
        [".xml"] = "application/xml",
        [".txt"] = "text/plain",
        [".csv"] = "text/csv",
        [".md"] = "text/markdown",
        [".svg"] = "image/svg+xml",
        [".png"] = "image/png",
        [".jpg"] = "image/jpeg",
        [".jpeg"] = "image/jpeg",
        [".gif"] = "image/gif",
        [".webp"] = "image/webp",
        [".avif"] = "image/avif",
        [".ico"] = "image/vnd.microsoft.icon",
        [".woff"] = "font/woff",
        [".woff2"] = "font/woff2",
        [".ttf"] = "font/ttf",
        [".otf"] = "font/otf",
        [".wasm"] = "application/wasm",
        [".pdf"] = "application/pdf",
        [".zip"] = "application/zip",
        [".gz"] = "application/gzip",
        [".mp4"] = "video/mp4",
        [".webm"] = "video/webm",
        [".mp3"] = "audio/mpeg",
        [".wav"] = "audio/x-wav",
        [".map"] = "application/json",
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    /// <summary>The media type for <paramref name="path"/>'s extension, or null when unknown (then no Content-Type is sent).</summary>
    public static string? MediaType(string path) => MediaTypes.GetValueOrDefault(Path.GetExtension(path));

    /// <summary>
    /// <paramref name="root"/> joined with the untrusted <paramref name="name"/> (werkzeug's <c>safe_join</c>, as mitmproxy
    /// uses it): null when a segment is <c>..</c>, the name is absolute, or it holds a NUL.
    /// </summary>
    public static string? Join(string root, string name)
    {
        if (name.StartsWith('/') || name.Contains('\0', StringComparison.Ordinal))
        {
            return null;
        }

        foreach (var segment in name.Split('/'))
        {
            if (segment == "..")
            {
                return null;
            }
        }

        var joined = Path.GetFullPath(Path.Join(root, name));
        return IsInside(root, joined) ? joined : null;
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="root"/> or below it (both absolute and normalized).</summary>
    public static bool IsInside(string root, string path) =>
        path == root || path.StartsWith(Path.EndsInDirectorySeparator(root) ? root : root + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>
    /// The absolute path with every symbolic link resolved, as <c>realpath(3)</c>; the part that does not exist is kept
    /// as written. Null when there are too many links (a loop).
    /// </summary>
    public static string? RealPath(string path)
    {
        var pending = new List<string>(Split(Path.GetFullPath(path)));
        var resolved = Path.GetPathRoot(Path.GetFullPath(path)) ?? "/";
        var links = 0;
        var index = 0;
        while (index < pending.Count)
        {
            var segment = pending[index++];
            if (segment is "" or ".")
            {
                continue;
            }

            if (segment == "..")
            {
                resolved = Path.GetDirectoryName(resolved) ?? resolved;
                continue;
            }

            var next = Path.Join(resolved, segment);
            string? target;
            try
            {
                target = new FileInfo(next).LinkTarget;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                target = null;
            }

            if (target is null)
            {
                resolved = next;
                continue;
            }

            if (++links > MaxSymbolicLinks)
            {
                return null;
            }

            // The link's target replaces it: from the root when absolute, else from the link's directory.
            var rest = pending.GetRange(index, pending.Count - index);
            pending = [.. Split(target), .. rest];
            index = 0;
            if (Path.IsPathRooted(target))
            {
                resolved = Path.GetPathRoot(target) ?? "/";
            }
        }

        return resolved;
    }

    private static string[] Split(string path) => path.Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
}
