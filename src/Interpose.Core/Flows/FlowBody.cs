using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json.Serialization;

namespace Interpose.Core.Flows;

/// <summary>
/// A message body as it crossed the wire (content-encoded, without chunked framing): the first bytes up to the
/// recording cap, the whole length, and the SHA-256 of the whole body.
/// </summary>
/// <remarks>
/// A recorder keeps the hash as its 32 bytes and makes the hex text only when <see cref="Sha256"/> is read: most
/// recorded flows go to a store that keeps the bytes, and formatting 64 hex digits for each body cost as much CPU as
/// hashing it (docs/performance.md, "Recording, fifth pass"). Equality compares the hash, however it is held.
/// </remarks>
public sealed record FlowBody
{
    // Set by the internal constructor only: the hash as bytes, with _sha256 made from it on first read.
    private readonly Sha256Digest _digest;
    private readonly bool _hasDigest;
    private string? _sha256;

    /// <summary>Creates a body.</summary>
    /// <param name="content">The recorded bytes: the whole body, or its first bytes when <see cref="IsTruncated"/>.</param>
    /// <param name="length">The length of the whole body in bytes.</param>
    /// <param name="sha256">The SHA-256 of the whole body in lower-case hex; null when the body did not end cleanly (the
    /// exchange failed mid-body), so only a prefix is known.</param>
    [JsonConstructor]
    public FlowBody(ReadOnlyMemory<byte> content, long length, string? sha256)
    {
        Content = content;
        Length = length;
        _sha256 = sha256;
    }

    private FlowBody(ReadOnlyMemory<byte> content, long length, ReadOnlySpan<byte> digest)
    {
        Content = content;
        Length = length;
        digest.CopyTo(_digest);
        _hasDigest = true;
    }

    /// <summary>A complete body whose hash is given as its bytes (<see cref="SHA256.HashSizeInBytes"/> of them).</summary>
    internal static FlowBody WithDigest(ReadOnlyMemory<byte> content, long length, ReadOnlySpan<byte> digest) => new(content, length, digest);

    /// <summary>An empty, complete body.</summary>
    public static FlowBody Empty { get; } = new(ReadOnlyMemory<byte>.Empty, 0, Convert.ToHexStringLower(SHA256.HashData(ReadOnlySpan<byte>.Empty)));

    /// <summary>The recorded bytes: the whole body, or its first bytes when <see cref="IsTruncated"/>.</summary>
    public ReadOnlyMemory<byte> Content { get; init; }

    /// <summary>The length of the whole body in bytes.</summary>
    public long Length { get; init; }

    /// <summary>The SHA-256 of the whole body in lower-case hex; null when the body did not end cleanly (the exchange
    /// failed mid-body), so only a prefix is known.</summary>
    public string? Sha256
    {
        get => _sha256 ??= _hasDigest ? Convert.ToHexStringLower(_digest) : null;
        init
        {
            _sha256 = value;
            _hasDigest = false;
        }
    }

    /// <summary>True when <see cref="Content"/> holds less than the whole body (over the cap, or dropped under load).</summary>
    [JsonIgnore]
    public bool IsTruncated => Content.Length < Length;

    /// <summary>A complete body made of <paramref name="content"/>, hashed here.</summary>
    /// <param name="content">The whole body.</param>
    /// <returns>The body.</returns>
    public static FlowBody FromBytes(ReadOnlyMemory<byte> content)
    {
        if (content.IsEmpty)
        {
            return Empty;
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(content.Span, hash);
        return new(content, content.Length, hash);
    }

    /// <summary>The same body without its bytes: length and hash kept (what a recorder keeps under load).</summary>
    /// <returns>The metadata-only body.</returns>
    public FlowBody WithoutContent() => Content.IsEmpty ? this : this with { Content = ReadOnlyMemory<byte>.Empty };

    /// <summary>The hash as its bytes, when it was given so (a recorder, a binary record): no text to parse.</summary>
    /// <param name="destination">Where the 32 bytes go.</param>
    /// <returns>False when the hash is held as text or unknown.</returns>
    internal bool TryCopyDigest(Span<byte> destination)
    {
        if (!_hasDigest)
        {
            return false;
        }

        ((ReadOnlySpan<byte>)_digest).CopyTo(destination);
        return true;
    }

    /// <inheritdoc/>
    public bool Equals(FlowBody? other) =>
        ReferenceEquals(this, other)
        || (other is not null && Content.Equals(other.Content) && Length == other.Length && string.Equals(Sha256, other.Sha256, StringComparison.Ordinal));

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Content, Length, Sha256);

    /// <summary>A SHA-256 held inline in the body, not as an array of its own.</summary>
    [InlineArray(32)]
    private struct Sha256Digest
    {
        private byte _first;
    }
}
