namespace Interpose.Core.Tls;

/// <summary>What a TLS ClientHello says about the connection the client wants (RFC 8446 §4.1.2), enough to decide
/// whether and how to intercept before any handshake is answered.</summary>
public sealed class ClientHello
{
    internal ClientHello(
        ushort legacyVersion,
        string? serverName,
        IReadOnlyList<string> applicationProtocols,
        IReadOnlyList<ushort> cipherSuites,
        IReadOnlyList<ushort> supportedVersions,
        IReadOnlyList<ushort> extensionTypes,
        int length)
    {
        LegacyVersion = legacyVersion;
        ServerName = serverName;
        ApplicationProtocols = applicationProtocols;
        CipherSuites = cipherSuites;
        SupportedVersions = supportedVersions;
        ExtensionTypes = extensionTypes;
        Length = length;
        IsParsed = true;
    }

    private ClientHello(int length)
    {
        ApplicationProtocols = [];
        CipherSuites = [];
        SupportedVersions = [];
        ExtensionTypes = [];
        Length = length;
    }

    /// <summary>
    /// Whether the hello was read. <see langword="false"/> for a TLS handshake record that <see cref="ClientHelloReader"/>
    /// refuses (a server name outside printable ASCII, a hello over <see cref="ClientHelloReader.MaxClientHelloLength"/>,
    /// one cut short): then nothing of it is known, <see cref="ServerName"/> is <see langword="null"/> and the lists are empty.
    /// </summary>
    public bool IsParsed { get; }

    /// <summary>The host_name from server_name (RFC 6066 §3), or <see langword="null"/> when absent.</summary>
    public string? ServerName { get; }

    /// <summary>ALPN protocol names in the client's preference order (RFC 7301), e.g. "h2", "http/1.1".</summary>
    public IReadOnlyList<string> ApplicationProtocols { get; }

    /// <summary>Offered cipher suites in order, GREASE values included as sent.</summary>
    public IReadOnlyList<ushort> CipherSuites { get; }

    /// <summary>The supported_versions extension (RFC 8446 §4.2.1), e.g. 0x0304 for TLS 1.3; empty when absent.</summary>
    public IReadOnlyList<ushort> SupportedVersions { get; }

    /// <summary>ClientHello.legacy_version, 0x0303 for TLS 1.2 and 1.3 clients.</summary>
    public ushort LegacyVersion { get; }

    /// <summary>Extension types in the order sent (useful for fingerprinting).</summary>
    public IReadOnlyList<ushort> ExtensionTypes { get; }

    /// <summary>Bytes of TLS records, from the first record header, that carried the ClientHello (when not
    /// <see cref="IsParsed"/>: the bytes received before the reader gave up).</summary>
    public int Length { get; }

    /// <summary>Stands for a hello that starts as a TLS handshake record but cannot be read.</summary>
    /// <param name="length">The bytes received so far.</param>
    internal static ClientHello Unparsed(int length) => new(length);
}
