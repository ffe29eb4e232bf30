using System.Security.Cryptography;
using System.Text;
using Interpose.Core.Flows;

namespace Interpose.Core.Tests.Flows;

/// <summary><see cref="FlowBody"/>'s hash, held as bytes or as text: the same value either way.</summary>
public sealed class FlowBodyTests
{
    private static readonly byte[] Bytes = Encoding.ASCII.GetBytes("a recorded body");

    [Fact]
    public void A_hash_given_as_bytes_reads_as_the_lower_case_hex_of_the_body_and_equals_the_same_hash_given_as_text()
    {
        var fromBytes = FlowBody.WithDigest(Bytes, Bytes.Length, SHA256.HashData(Bytes));
        var fromText = new FlowBody(Bytes, Bytes.Length, Convert.ToHexStringLower(SHA256.HashData(Bytes)));

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Bytes)), fromBytes.Sha256);
        Assert.Equal(fromText, fromBytes);
        Assert.Equal(fromText.GetHashCode(), fromBytes.GetHashCode());
        Assert.Equal(FlowBody.FromBytes(Bytes), fromBytes);
        Assert.NotEqual(fromText with { Sha256 = null }, fromBytes);
    }

    [Fact]
    public void The_bytes_of_a_hash_are_handed_on_only_when_held_as_bytes_and_survive_dropping_the_content()
    {
        Span<byte> copied = stackalloc byte[SHA256.HashSizeInBytes];
        var body = FlowBody.FromBytes(Bytes);

        Assert.True(body.WithoutContent().TryCopyDigest(copied));
        Assert.Equal(SHA256.HashData(Bytes), copied.ToArray());
        Assert.Equal(body.Sha256, body.WithoutContent().Sha256);
        Assert.False(new FlowBody(Bytes, Bytes.Length, body.Sha256).TryCopyDigest(copied));

        // A hash set as text replaces one held as bytes.
        var replaced = body with { Sha256 = null };
        Assert.Null(replaced.Sha256);
        Assert.False(replaced.TryCopyDigest(copied));
    }

    [Fact]
    public void A_body_kept_whole_hashes_its_bytes_when_asked_and_a_copy_cut_shorter_keeps_the_whole_bodys_hash()
    {
        var whole = Convert.ToHexStringLower(SHA256.HashData(Bytes));
        Span<byte> copied = stackalloc byte[SHA256.HashSizeInBytes];
        var body = FlowBody.FromBytes(Bytes);

        Assert.Equal(whole, body.Sha256);
        Assert.True(body.TryCopyDigest(copied));
        Assert.Equal(SHA256.HashData(Bytes), copied.ToArray());

        // What a recorder does at its cap: the content cut, the length and hash the whole body's (not the prefix's).
        var prefix = FlowBody.FromBytes(Bytes) with { Content = Bytes.AsMemory(0, 5) };
        Assert.True(prefix.IsTruncated);
        Assert.Equal(whole, prefix.Sha256);
        Assert.Equal(Bytes.Length, prefix.Length);
        Assert.Equal(whole, (FlowBody.FromBytes(Bytes) with { Length = 1_000 }).Sha256);
    }
}
