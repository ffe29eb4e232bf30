namespace Interpose.Proxy.Internal;

/// <summary>
/// A fatal TLS alert sent in the clear, before any handshake message of the proxy's: the answer to a ClientHello whose
/// handshake cannot start, so that the client reports the refusal instead of a connection that broke.
/// </summary>
internal static class TlsAlert
{
    /// <summary>
    /// RFC 8446 §6.2 (and RFC 5246 §7.2.2) internal_error (80): "an internal error unrelated to the peer or the correctness
    /// of this protocol ... makes it impossible to continue". What the proxy sends when it cannot make a certificate.
    /// </summary>
    public const byte InternalError = 80;

    /// <summary>RFC 8446 §5.1 ContentType alert (21).</summary>
    private const byte AlertContentType = 21;

    /// <summary>RFC 8446 §6 AlertLevel fatal (2): the connection ends with it.</summary>
    private const byte Fatal = 2;

    /// <summary>
    /// Writes one unprotected alert record: content type alert, legacy_record_version 0x0303 (RFC 8446 §5.1: what a
    /// TLS 1.3 implementation writes on every record but an initial ClientHello, and TLS 1.2's own version), a length of
    /// 2, then the level and the description. Unprotected, because no keys exist before the server's first message.
    /// </summary>
    /// <exception cref="IOException">The client's connection failed (it may have left).</exception>
    /// <exception cref="ObjectDisposedException">The client's connection was closed meanwhile.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async ValueTask SendFatalAsync(Stream stream, byte description, CancellationToken cancellationToken)
    {
        byte[] record = [AlertContentType, 0x03, 0x03, 0x00, 0x02, Fatal, description];
        await stream.WriteAsync(record, cancellationToken);
        await stream.FlushAsync(cancellationToken);
    }
}
