namespace Interpose.Proxy.Internal;

/// <summary>
/// The side a body was read from closed its connection before the body's framing said it ended (RFC 9112 §8: an
/// incomplete message). Who that was depends on the relay: the client for a request body, the origin for a response.
/// </summary>
internal sealed class BodyTruncatedException(string message) : IOException(message);

/// <summary>
/// The client closed its connection in the middle of its request body: the exchange fails in the client-request phase,
/// not as the origin failing, and a client still reading is answered 400 (RFC 9112 §8: an incomplete request).
/// </summary>
internal sealed class ClientBodyEndedException(BodyTruncatedException truncated)
    : IOException("the client closed its connection in the middle of the request body: " + truncated.Message, truncated);
