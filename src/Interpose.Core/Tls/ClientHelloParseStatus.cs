namespace Interpose.Core.Tls;

/// <summary>Outcome of <see cref="ClientHelloReader.TryRead"/>.</summary>
public enum ClientHelloParseStatus
{
    /// <summary>The bytes so far are a valid prefix of a TLS ClientHello; read more.</summary>
    Incomplete,

    /// <summary>The bytes are not a TLS handshake record (plain HTTP or something else).</summary>
    NotTls,

    /// <summary>TLS records, but not a well-formed ClientHello within the size cap.</summary>
    Invalid,

    /// <summary>A complete ClientHello was parsed.</summary>
    Parsed,
}
