namespace Interpose.Proxy.Internal;

/// <summary>
/// A request's trailers the HTTP/2 origin said it would not accept: their field list is larger, by the RFC 7541 §4.1
/// size (name + value + 32 octets per field), than the origin's SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2), which
/// bounds every field section, trailers included. They were not sent; when the head had already left, the stream was
/// reset with CANCEL so that the origin never takes the request as complete. The client gets a 502, not a 431: the
/// request head was acceptable, and the origin may have started on it.
/// </summary>
/// <remarks>Not an <see cref="IOException"/>: nothing failed on the wire, and sending the request again cannot succeed.</remarks>
internal sealed class TrailerListTooLargeException(long size, uint limit, bool headSent)
    : Exception($"the request's trailers ({size} bytes by RFC 7541 §4.1) exceed the origin's SETTINGS_MAX_HEADER_LIST_SIZE of {limit} bytes (RFC 9113 §6.5.2); "
        + (headSent ? "they were not sent and the stream was reset (CANCEL)" : "the request was not sent"));
