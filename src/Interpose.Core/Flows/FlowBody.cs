using System.Security.Cryptography;
using System.Text.Json.Serialization;

namespace Interpose.Core.Flows;

/// <summary>
/// A message body as it crossed the wire (content-encoded, without chunked framing): the first bytes up to the
/// recording cap, the whole length, and the SHA-256 of the whole body.
/// </summary>
/// <param name="Content">The recorded bytes: the whole body, or its first bytes when <see cref="IsTruncated"/>.</param>
/// <param name="Length">The length of the whole body in bytes.</param>
/// <param name="Sha256">The SHA-256 of the whole body in lower-case hex; null when the body did not end cleanly (the
/// exchange failed mid-body), so only a prefix is known.</param>
public sealed record FlowBody(ReadOnlyMemory<byte> Content, long Length, string? Sha256)
{
    /// <summary>An empty, complete body.</summary>
    public static FlowBody Empty { get; } = new(ReadOnlyMemory<byte>.Empty, 0, Convert.ToHexStringLower(SHA256.HashData(ReadOnlySpan<byte>.Empty)));

    /// <summary>True when <see cref="Content"/> holds less than the whole body (over the cap, or dropped under load).</summary>
    [JsonIgnore]
    public bool IsTruncated => Content.Length < Length;

    /// <summary>A complete body made of <paramref name="content"/>, hashed here.</summary>
    /// <param name="content">The whole body.</param>
    /// <returns>The body.</returns>
    public static FlowBody FromBytes(ReadOnlyMemory<byte> content) =>
        content.IsEmpty ? Empty : new(content, content.Length, Convert.ToHexStringLower(SHA256.HashData(content.Span)));

    /// <summary>The same body without its bytes: length and hash kept (what a recorder keeps under load).</summary>
    /// <returns>The metadata-only body.</returns>
    public FlowBody WithoutContent() => Content.IsEmpty ? this : this with { Content = ReadOnlyMemory<byte>.Empty };
}
