using System.Text.RegularExpressions;
using Interpose.Core.Filters;

namespace Interpose.Proxy.Rules;

/// <summary>
/// mitmproxy's <c>--map-local [|filter]|url-regex|file-or-directory</c>: a request whose URL matches is answered from a
/// local file instead of the origin. A file is served for every match. For a directory, the file is the rest of the URL
/// after the match (without the query; or the regex's first group, query included, when it has one), percent-decoded,
/// then that name with <c>/index.html</c>, then both with the characters outside <c>[0-9a-zA-Z-_.=(),/]</c> turned to
/// <c>_</c>; nothing left means <c>index.html</c>. Content-Type comes from the extension; 404 when no candidate exists.
/// </summary>
/// <remarks>
/// Never outside the directory: a name with a <c>..</c> segment (also percent-encoded), an absolute name or a NUL is
/// refused, and every symbolic link on the way is resolved and must stay inside the (resolved) directory. A refused
/// name is answered 404 (mitmproxy sends it on to the origin instead).
/// </remarks>
public sealed class MapLocalRule
{
    /// <summary>
    /// The largest file served: the default of <see cref="ProxyOptions.MaxBufferedBodyBytes"/> (32 MiB), the most the
    /// proxy holds of any one body; a larger file fails the exchange with a 502 naming the file.
    /// </summary>
    public const long MaxFileBytes = ProxyOptions.DefaultMaxBufferedBodyBytes;

    // mitmproxy/addons/maplocal.py: the characters kept when a name is escaped for a second try.
    private static readonly Regex Unsafe = new(@"[^0-9a-zA-Z\-_.=(),/]", RegexOptions.CultureInvariant);

    private MapLocalRule(string spec, FlowFilter? filter, Regex pattern, string localPath, bool isDirectory)
    {
        Spec = spec;
        Filter = filter;
        Pattern = pattern;
        LocalPath = localPath;
        IsDirectory = isDirectory;
    }

    /// <summary>The spec the rule was parsed from.</summary>
    public string Spec { get; }

    /// <summary>The requests the rule applies to; null for all.</summary>
    public FlowFilter? Filter { get; }

    /// <summary>The regular expression searched in the URL (case-sensitive, as Python's <c>re</c>).</summary>
    public Regex Pattern { get; }

    /// <summary>The file, or the directory, with every symbolic link in it resolved.</summary>
    public string LocalPath { get; }

    /// <summary>Whether <see cref="LocalPath"/> is a directory.</summary>
    public bool IsDirectory { get; }

    /// <summary>Parses <c>[SEP filter] SEP url-regex SEP path</c> (the first character is the separator), e.g.
    /// <c>|example\.com/static/|./public</c>.</summary>
    /// <param name="spec">The spec.</param>
    /// <returns>The rule.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="spec"/> is null.</exception>
    /// <exception cref="FormatException">Wrong number of parts, a filter or regex that does not parse, or a path that
    /// does not exist; the message says which.</exception>
    public static MapLocalRule Parse(string spec)
    {
        var parsed = RuleSpec.Parse(spec);
        var pattern = RuleSpec.ParseRegex(parsed.Subject);
        var path = Path.GetFullPath(RuleSpec.ExpandHome(parsed.Replacement));
        var real = LocalFiles.RealPath(path);
        if (real is null || (!File.Exists(real) && !Directory.Exists(real)))
        {
            throw new FormatException($"invalid file path: {parsed.Replacement} (no such file or directory)");
        }

        return new MapLocalRule(spec, parsed.Filter, pattern, real, Directory.Exists(real));
    }

    /// <summary>
    /// The files to try for <paramref name="url"/>, best first (mitmproxy's <c>file_candidates</c>); empty when the
    /// regex does not match; null when the name would leave the directory.
    /// </summary>
    internal IReadOnlyList<string>? Candidates(string url)
    {
        var match = Pattern.Match(url);
        if (!match.Success)
        {
            return [];
        }

        if (!IsDirectory)
        {
            return [LocalPath];
        }

        string suffix;
        if (match.Groups.Count > 1)
        {
            suffix = match.Groups[1].Value;
        }
        else
        {
            suffix = url[(match.Index + match.Length)..];
            var query = suffix.IndexOf('?', StringComparison.Ordinal);
            suffix = (query < 0 ? suffix : suffix[..query]).Trim('/');
        }

        if (suffix.Length == 0)
        {
            return [Path.Join(LocalPath, "index.html")];
        }

        var decoded = Uri.UnescapeDataString(suffix);
        var names = new List<string> { decoded, decoded + "/index.html" };
        var escaped = Unsafe.Replace(decoded, "_");
        if (escaped != decoded)
        {
            names.Add(escaped);
            names.Add(escaped + "/index.html");
        }

        var candidates = new List<string>(names.Count);
        foreach (var name in names)
        {
            if (LocalFiles.Join(LocalPath, name) is not { } joined)
            {
                return null;
            }

            candidates.Add(joined);
        }

        return candidates;
    }

    /// <inheritdoc/>
    public override string ToString() => Spec;
}
