using Interpose.Core.Http;

namespace Interpose.Core.Http2;

/// <summary>An HTTP/2 request field section that passed <see cref="Http2HeaderRules.ValidateRequest"/>: the
/// pseudo-fields by name and the regular fields in order (lowercase names, as received).</summary>
public sealed class Http2RequestFields
{
    internal Http2RequestFields(string method, string? scheme, string? authority, string? path, string? protocol, IReadOnlyList<HttpHeader> fields)
    {
        Method = method;
        Scheme = scheme;
        Authority = authority;
        Path = path;
        Protocol = protocol;
        Fields = fields;
    }

    /// <summary><c>:method</c>.</summary>
    public string Method { get; }

    /// <summary><c>:scheme</c>; <see langword="null"/> for CONNECT (RFC 9113 §8.5).</summary>
    public string? Scheme { get; }

    /// <summary><c>:authority</c>, or the Host field when <c>:authority</c> is absent; <see langword="null"/> when neither.</summary>
    public string? Authority { get; }

    /// <summary><c>:path</c>; <see langword="null"/> for CONNECT.</summary>
    public string? Path { get; }

    /// <summary><c>:protocol</c> of an extended CONNECT (RFC 8441 §4), else <see langword="null"/>.</summary>
    public string? Protocol { get; }

    /// <summary>The regular fields in received order (Host included if it was sent).</summary>
    public IReadOnlyList<HttpHeader> Fields { get; }
}
