using System.Globalization;

namespace Interpose.Proxy.Rules;

/// <summary>
/// What server replay does with a request that matches no recorded flow (mitmproxy's <c>server_replay_extra</c>):
/// forward it to the origin, kill it (close the client connection without an answer), or answer with a status.
/// </summary>
public readonly record struct ServerReplayExtra
{
    private ServerReplayExtra(int statusCode) => StatusCode = statusCode;

    /// <summary>Send it to the origin (mitmproxy's default, and ours).</summary>
    public static ServerReplayExtra Forward { get; }

    /// <summary>Close the client connection without an answer.</summary>
    public static ServerReplayExtra Kill { get; } = new(-1);

    /// <summary>0 to forward, -1 to kill, else the status to answer with (empty body).</summary>
    public int StatusCode { get; }

    /// <summary>Whether unmatched requests go to the origin.</summary>
    public bool IsForward => StatusCode == 0;

    /// <summary>Whether unmatched requests are killed.</summary>
    public bool IsKill => StatusCode == -1;

    /// <summary>Answer unmatched requests with <paramref name="statusCode"/> and an empty body.</summary>
    /// <param name="statusCode">A final status code, 200 to 599.</param>
    /// <returns>The choice.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Not a final status code.</exception>
    public static ServerReplayExtra Status(int statusCode) =>
        statusCode is >= 200 and <= 599 ? new(statusCode) : throw new ArgumentOutOfRangeException(nameof(statusCode), statusCode, "A final status code (200-599) is required.");

    /// <summary>Parses <c>forward</c>, <c>kill</c> or a status code (mitmproxy's spellings).</summary>
    /// <param name="text">The text.</param>
    /// <returns>The choice.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">None of these.</exception>
    public static ServerReplayExtra Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Equals("forward", StringComparison.OrdinalIgnoreCase))
        {
            return Forward;
        }

        if (text.Equals("kill", StringComparison.OrdinalIgnoreCase))
        {
            return Kill;
        }

        // RFC 9110 §15: an answer in place of the origin's must be a final status; 1xx are interim.
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var status) && status is >= 200 and <= 599
            ? new(status)
            : throw new FormatException($"'{text}' is not forward, kill or a status code (200-599)");
    }

    /// <inheritdoc/>
    public override string ToString() => IsForward ? "forward" : IsKill ? "kill" : StatusCode.ToString(CultureInfo.InvariantCulture);
}
