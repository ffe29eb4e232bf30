namespace Interpose.Core.Http;

/// <summary>How a message body is delimited on the wire (RFC 9112 §6.3).</summary>
public enum BodyKind
{
    /// <summary>No body follows the head.</summary>
    None,

    /// <summary>Exactly <see cref="BodyFraming.ContentLength"/> bytes follow.</summary>
    ContentLength,

    /// <summary>The chunked transfer coding delimits the body (RFC 9112 §7.1).</summary>
    Chunked,

    /// <summary>The body runs until the connection closes (responses only, RFC 9112 §6.3 items 4 and 8).</summary>
    CloseDelimited,
}
