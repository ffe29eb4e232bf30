namespace Interpose.Proxy;

/// <summary>Defaults of the origin connection pool.</summary>
internal static class UpstreamPoolDefaults
{
    /// <summary>
    /// Idle connections kept per origin: 256. SocketsHttpHandler caps idle connections per server not at all (only by
    /// idle time); with 32, 64 clients busy on one HTTPS origin saw half their origin connections closed on return and
    /// re-opened with a TLS handshake each (load benchmark https-1k-c64: 0.15 of direct, handshakes and chain
    /// validation on top of the profile). The total cap below still bounds descriptors.
    /// </summary>
    public const int MaxIdlePerOrigin = 256;

    /// <summary>Idle connections kept in total: 512, bounding descriptors and TLS state held for reuse.</summary>
    public const int MaxIdleTotal = 512;
}
