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
/// hashing it (docs/performance.md, "Recording, fifth pass"). A body kept whole (<see cref="FromBytes"/>) has its hash
/// made from its bytes when first asked for, by whichever thread stores or shows it. Equality compares the hash, however
/// it is held.
/// </remarks>
public sealed record FlowBody
{
    // Set while the body is made (its constructors and init accessors) and only read after: the hash as bytes, with
    // _sha256 made from it on first read.
    private Sha256Digest _digest;
    private bool _hasDigest;

    // The content is the whole body and the hash is made from it when first asked for (FromBytes): a recorder's socket
    // thread does not hash every body it keeps whole; whoever stores or shows the flow does, once. A `with` that replaces
    // the content or the length makes the hash from the old content first (Settle), so the copy keeps the whole body's.
    private bool _derived;
    private string? _sha256;
    private ReadOnlyMemory<byte> _content;
    private long _length;

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

    private FlowBody(ReadOnlyMemory<byte> whole)
    {
        Content = whole;
        Length = whole.Length;
        _derived = true;
    }

    /// <summary>A complete body whose hash is given as its bytes (<see cref="SHA256.HashSizeInBytes"/> of them).</summary>
    internal static FlowBody WithDigest(ReadOnlyMemory<byte> content, long length, ReadOnlySpan<byte> digest) => new(content, length, digest);

    /// <summary>An empty, complete body.</summary>
    public static FlowBody Empty { get; } = new(ReadOnlyMemory<byte>.Empty, 0, Convert.ToHexStringLower(SHA256.HashData(ReadOnlySpan<byte>.Empty)));

    /// <summary>The recorded bytes: the whole body, or its first bytes when <see cref="IsTruncated"/>.</summary>
    public ReadOnlyMemory<byte> Content
    {
        get => _content;
        init
        {
            Settle();
            _content = value;
        }
    }

    /// <summary>The length of the whole body in bytes.</summary>
    public long Length
    {
        get => _length;
        init
        {
            Settle();
            _length = value;
        }
    }

    /// <summary>The SHA-256 of the whole body in lower-case hex; null when the body did not end cleanly (the exchange
    /// failed mid-body), so only a prefix is known.</summary>
    public string? Sha256
    {
        get => _sha256 ??= _hasDigest ? Convert.ToHexStringLower(_digest)
            : _derived ? Convert.ToHexStringLower(SHA256.HashData(_content.Span))
            : null;
        init
        {
            _sha256 = value;
            _hasDigest = false;
            _derived = false;
        }
    }

    /// <summary>True when <see cref="Content"/> holds less than the whole body (over the cap, or dropped under load).</summary>
    [JsonIgnore]
    public bool IsTruncated => Content.Length < Length;

    /// <summary>True when the body did not end cleanly: the exchange failed mid-body (a peer closed or reset early), so
    /// <see cref="Length"/> counts only the bytes that passed and there is no <see cref="Sha256"/>. Such a body is not
    /// <see cref="IsTruncated"/> when all the bytes that passed were kept, yet it is not the whole body either.</summary>
    [JsonIgnore]
    public bool IsIncomplete => _sha256 is null && !_hasDigest && !_derived;

    /// <summary>True when the recording holds the whole body: it ended cleanly and <see cref="Content"/> has all of it;
    /// what a replay needs before it sends the body as if whole.</summary>
    [JsonIgnore]
    public bool IsWhole => !IsTruncated && !IsIncomplete;

    /// <summary>A complete body made of <paramref name="content"/>; its <see cref="Sha256"/> is made from the bytes when
    /// first asked for.</summary>
    /// <param name="content">The whole body; not to be changed afterwards (the hash is made from it later).</param>
    /// <returns>The body.</returns>
    public static FlowBody FromBytes(ReadOnlyMemory<byte> content) => content.IsEmpty ? Empty : new(content);

    /// <summary>The same body without its bytes: length and hash kept (what a recorder keeps under load).</summary>
    /// <returns>The metadata-only body.</returns>
    public FlowBody WithoutContent() => Content.IsEmpty ? this : this with { Content = ReadOnlyMemory<byte>.Empty };

    /// <summary>The hash as its bytes, when it was given so (a recorder, a binary record) or is made from the whole
    /// content (<see cref="FromBytes"/>): no text to parse.</summary>
    /// <param name="destination">Where the 32 bytes go.</param>
    /// <returns>False when the hash is held as text or unknown.</returns>
    internal bool TryCopyDigest(Span<byte> destination)
    {
        if (_hasDigest)
        {
            ((ReadOnlySpan<byte>)_digest).CopyTo(destination);
            return true;
        }

        if (_derived)
        {
            // Made again at each call rather than kept: another thread may read this body meanwhile.
            SHA256.HashData(_content.Span, destination);
            return true;
        }

        return false;
    }

    /// <summary>Before a <c>with</c> replaces the content or the length of a body whose hash is made from its content:
    /// the hash is made now, from the whole body.</summary>
    private void Settle()
    {
        if (_derived)
        {
            SHA256.HashData(_content.Span, _digest);
            _hasDigest = true;
            _derived = false;
        }
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
