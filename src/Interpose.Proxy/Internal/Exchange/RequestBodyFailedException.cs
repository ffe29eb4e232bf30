namespace Interpose.Proxy.Internal;

/// <summary>
/// Sending a streamed request body failed in code rather than on the wire: a hook's transform or body observer threw
/// (or the proxy has a bug). The exchange fails with this as its reason; nothing is retried, as the origin may have
/// received part of the body.
/// </summary>
/// <remarks>Not an <see cref="IOException"/>: those mean the client or the origin stopped, and are reported as such.</remarks>
internal sealed class RequestBodyFailedException(Exception inner)
    : Exception("the request body could not be sent: " + inner.Message, inner);
