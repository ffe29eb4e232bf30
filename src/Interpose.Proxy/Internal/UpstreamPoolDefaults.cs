namespace Interpose.Proxy;

/// <summary>Defaults of the origin connection pool.</summary>
internal static class UpstreamPoolDefaults
{
    /// <summary>Idle connections kept per origin: 32, enough for a browser's 6 per host times a few tabs.</summary>
    public const int MaxIdlePerOrigin = 32;

    /// <summary>Idle connections kept in total: 512, bounding descriptors and TLS state held for reuse.</summary>
    public const int MaxIdleTotal = 512;
}
