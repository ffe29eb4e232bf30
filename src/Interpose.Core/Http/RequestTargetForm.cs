namespace Interpose.Core.Http;

/// <summary>The four request-target forms of RFC 9112 §3.2.</summary>
public enum RequestTargetForm
{
    /// <summary><c>/path?query</c> (RFC 9112 §3.2.1).</summary>
    Origin,

    /// <summary><c>http://host:port/path?query</c> (RFC 9112 §3.2.2), what clients send to a forward proxy.</summary>
    Absolute,

    /// <summary><c>host:port</c>, only for CONNECT (RFC 9112 §3.2.3).</summary>
    Authority,

    /// <summary><c>*</c>, only for server-wide OPTIONS (RFC 9112 §3.2.4).</summary>
    Asterisk,
}
