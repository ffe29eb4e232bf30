namespace Interpose.Core.Filters;

/// <summary>How a filter's regular expressions are compiled.</summary>
public sealed record FlowFilterOptions
{
    /// <summary>
    /// How long one regular expression may run against one subject before evaluation gives up with
    /// <see cref="System.Text.RegularExpressions.RegexMatchTimeoutException"/>: 250 ms. Filters arrive from users, UIs
    /// and stored queries, and a backtracking pattern over a 1 MiB body must not stall a proxy thread; a linear scan
    /// of a 1 MiB body takes about a millisecond, so honest patterns never come near it. Python's <c>re</c>, which
    /// mitmproxy uses, has no timeout at all.
    /// </summary>
    public static readonly TimeSpan DefaultMatchTimeout = TimeSpan.FromMilliseconds(250);

    /// <summary>The defaults: case-insensitive, <see cref="DefaultMatchTimeout"/>.</summary>
    public static FlowFilterOptions Default { get; } = new();

    /// <summary>
    /// Match case-sensitively. Off by default, as in mitmproxy, where the environment variable
    /// <c>MITMPROXY_CASE_SENSITIVE_FILTERS=1</c> turns it on. <c>~a</c>'s built-in types are always case-sensitive.
    /// </summary>
    public bool CaseSensitive { get; init; }

    /// <summary>The per-match timeout (<see cref="DefaultMatchTimeout"/> by default); must be positive.</summary>
    public TimeSpan MatchTimeout { get; init; } = DefaultMatchTimeout;
}
