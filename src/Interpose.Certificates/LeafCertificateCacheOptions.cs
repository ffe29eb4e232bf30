namespace Interpose.Certificates;

/// <summary>Bounds and policies of a <see cref="LeafCertificateCache"/>.</summary>
public sealed class LeafCertificateCacheOptions
{
    /// <summary>
    /// The default number of leaves kept. A browsing session touches a few hundred hosts; each cached leaf costs a few
    /// kilobytes (certificate, native handles, chain), so 1000 keeps a busy session warm within a few megabytes
    /// (mitmproxy keeps 100, certs.py STORE_CAP, and re-forges more often).
    /// </summary>
    public const int DefaultCapacity = 1000;

    /// <summary>
    /// The default refresh margin: a leaf with less than 30 days left is forged again on its next use, so a client never
    /// sees one near expiry (leaves live 365 days; the margin also absorbs client clocks running ahead).
    /// </summary>
    public static readonly TimeSpan DefaultRefreshBefore = TimeSpan.FromDays(30);

    /// <summary>How many leaves are kept; the least recently used one is evicted beyond it. At least 1.</summary>
    public int Capacity { get; init; } = DefaultCapacity;

    /// <summary>A cached leaf with less than this left before expiry is forged again on its next use.</summary>
    public TimeSpan RefreshBefore { get; init; } = DefaultRefreshBefore;

    /// <summary>
    /// Whether every host gets its own key pair. Off by default: one key per process is what mitmproxy, goproxy and
    /// martian do, and it makes a forge one signature instead of a key generation.
    /// </summary>
    public bool KeyPerHost { get; init; }

    /// <summary>The key algorithm of leaf keys: ECDSA P-256 by default; RSA 3072 for clients without ECDSA.</summary>
    public CertificateKeyAlgorithm KeyAlgorithm { get; init; } = CertificateKeyAlgorithm.EcdsaP256;

    /// <summary>The clock that dates leaves and decides when they are refreshed and retired leaves are released.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
