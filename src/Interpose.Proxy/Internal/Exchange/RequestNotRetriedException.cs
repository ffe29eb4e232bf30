namespace Interpose.Proxy.Internal;

/// <summary>
/// A reused origin connection failed (closed, reset) before any response byte, and the request's method is not
/// idempotent: the origin may have processed it, and RFC 9110 §9.2.2 says "A proxy MUST NOT automatically retry
/// non-idempotent requests". It is not sent again; the client gets a 502 with this reason.
/// </summary>
/// <remarks>An <see cref="IOException"/> as the failure it wraps: transient (the client may decide to send it again).</remarks>
internal sealed class RequestNotRetriedException(string method, Exception inner)
    : IOException($"{inner.Message}; the {method} request may have reached the origin, and a proxy does not send a non-idempotent request again (RFC 9110 §9.2.2)", inner);
