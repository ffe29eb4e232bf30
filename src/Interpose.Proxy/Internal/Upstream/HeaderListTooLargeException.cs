namespace Interpose.Proxy.Internal;

/// <summary>
/// A request head the HTTP/2 origin said it would not accept: its field list is larger, by the RFC 7541 §4.1 size
/// (name + value + 32 octets per field), than the origin's SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2). It was not
/// sent; the client gets 431 (RFC 6585 §5), as the origin would have answered it.
/// </summary>
/// <remarks>Not an <see cref="IOException"/>: nothing failed on the wire and no retry elsewhere can succeed.</remarks>
internal sealed class HeaderListTooLargeException(long size, uint limit)
    : Exception($"the request's header list ({size} bytes by RFC 7541 §4.1) exceeds the origin's SETTINGS_MAX_HEADER_LIST_SIZE of {limit} bytes (RFC 9113 §6.5.2); it was not sent")
{
    /// <summary>The field list's size: name + value + 32 per field.</summary>
    public long Size { get; } = size;

    /// <summary>The origin's SETTINGS_MAX_HEADER_LIST_SIZE.</summary>
    public uint Limit { get; } = limit;
}
