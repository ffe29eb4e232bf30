namespace Interpose.Core.Http;

/// <summary>How a forwarded request's body leaves the proxy (see <see cref="ForwardingRules.PrepareRequest"/>).</summary>
public enum RequestBodyRelay
{
    /// <summary>No body to send beyond what the head says (none, or an empty one).</summary>
    None,

    /// <summary>In memory, sent whole with a fresh Content-Length.</summary>
    InHand,

    /// <summary>Streamed with the client's Content-Length, byte for byte.</summary>
    Raw,

    /// <summary>Streamed with the client's chunked framing passed through untouched.</summary>
    RawChunked,

    /// <summary>Streamed through a transform and re-framed as chunked.</summary>
    Rechunked,
}
