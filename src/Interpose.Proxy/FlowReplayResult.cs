using Interpose.Core.Flows;

namespace Interpose.Proxy;

/// <summary>How one client replay went (<see cref="FlowReplayer.ReplayAsync"/>).</summary>
/// <param name="Original">The recorded flow that was replayed.</param>
/// <param name="StatusCode">The status of the new response; null when none came.</param>
/// <param name="Error">Why the replay failed (no response: a connection, TLS or protocol failure, a request that cannot
/// be replayed); null when a response came, whatever its status.</param>
public sealed record FlowReplayResult(HttpFlow Original, int? StatusCode, string? Error)
{
    /// <summary>Whether a response came back (a 404 or a 500 is a successful replay: the origin answered).</summary>
    public bool Succeeded => Error is null;
}
