namespace Interpose.Proxy.Rules;

/// <summary>How <see cref="ServerReplayAddon"/> matches requests to recorded flows, and its bounds.</summary>
/// <remarks>The match key is mitmproxy's: method, scheme, port, path, the query's parameters in order, the host, and
/// the request body (its SHA-256, which the recording keeps even for a body cut at the cap).</remarks>
public sealed record ServerReplayOptions
{
    /// <summary>
    /// The default of <see cref="MaxFlows"/>: 100,000 replayable flows. Not from a standard: a round bound so that a
    /// huge recording fails at start with a clear error instead of filling memory (each entry holds its response's
    /// head, typically under 2 KiB, plus its body, which <see cref="MaxBodyBytes"/> bounds).
    /// </summary>
    public const int DefaultMaxFlows = 100_000;

    /// <summary>
    /// The default of <see cref="MaxBodyBytes"/>: 256 MiB of response bodies, eight times the most the proxy holds of
    /// one body (<see cref="ProxyOptions.DefaultMaxBufferedBodyBytes"/>, 32 MiB).
    /// </summary>
    public const long DefaultMaxBodyBytes = 8 * ProxyOptions.DefaultMaxBufferedBodyBytes;

    /// <summary>Query parameters left out of the match (mitmproxy's <c>server_replay_ignore_params</c>).</summary>
    public IReadOnlyCollection<string> IgnoreParams { get; init; } = [];

    /// <summary>Leave the request body out of the match (<c>server_replay_ignore_content</c>). Otherwise every request
    /// body is held whole to be hashed (up to <see cref="ProxyOptions.MaxBufferedBodyBytes"/>).</summary>
    public bool IgnoreContent { get; init; }

    /// <summary>Leave the host out of the match (<c>server_replay_ignore_host</c>); scheme and port still count.</summary>
    public bool IgnoreHost { get; init; }

    /// <summary>
    /// Keep serving the last recorded response of a key once the others were served (<c>server_replay_reuse</c>).
    /// Without it each recorded response is served once, in recorded order, and then the key matches nothing.
    /// </summary>
    public bool Reuse { get; init; }

    /// <summary>What to do with a request that matches nothing (<c>server_replay_extra</c>); forward by default.</summary>
    public ServerReplayExtra Extra { get; init; } = ServerReplayExtra.Forward;

    /// <summary>The most replayable flows loaded; more is an error at load time.</summary>
    public int MaxFlows { get; init; } = DefaultMaxFlows;

    /// <summary>The most response body bytes held in memory in total; more is an error at load time.</summary>
    public long MaxBodyBytes { get; init; } = DefaultMaxBodyBytes;
}
