using System.Security.Cryptography;
using System.Text;
using Interpose.Core.Http;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Checks <c>Proxy-Authorization</c> against the configured users in constant time: every user is compared, each
/// through a SHA-256 of the whole <c>user:password</c> so that lengths leak nothing, and the loop never exits early.
/// </summary>
internal sealed class ProxyAuthenticator
{
    /// <summary>Longest Proxy-Authorization value looked at; the header limits bound it anyway, this bounds the decode.</summary>
    private const int MaxCredentialsLength = 4096;

    private readonly byte[][] _expected;

    public ProxyAuthenticator(ProxyAuthentication authentication)
    {
        // RFC 7617 §2.1: the default charset is unspecified; UTF-8 is what curl and browsers send for non-ASCII.
        _expected = [.. authentication.Users.Select(u => SHA256.HashData(Encoding.UTF8.GetBytes(u.UserName + ":" + u.Password)))];
    }

    public bool IsEnabled => _expected.Length > 0;

    /// <summary>
    /// The 407 answer (RFC 9110 §15.5.8): it MUST carry a Proxy-Authenticate challenge. The connection is closed
    /// after it, since the request body (if any) was not read.
    /// </summary>
    public static ReadOnlyMemory<byte> Challenge { get; } = FixedResponses.Create(
        407, "proxy authentication required", $"Proxy-Authenticate: Basic realm=\"{ProxyAuthentication.Realm}\", charset=\"UTF-8\"\r\n");

    /// <summary>Whether the request head carries valid credentials (or none are required).</summary>
    public bool IsAuthorized(HttpRequestHead head)
    {
        if (!IsEnabled)
        {
            return true;
        }

        // RFC 9110 §11.6.2 / §5.3: one credentials value; several fields (or a list) are not a credential.
        var value = head.Headers.Get("Proxy-Authorization");
        if (value is null || value.Length > MaxCredentialsLength || head.Headers.GetValues("Proxy-Authorization").Take(2).Count() != 1)
        {
            return false;
        }

        // RFC 9110 §11.1: the scheme is case-insensitive; RFC 7617 §2: token68 after exactly the scheme and spaces.
        const string Scheme = "Basic ";
        if (!value.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        Span<byte> decoded = stackalloc byte[MaxCredentialsLength];
        if (!Convert.TryFromBase64Chars(value.AsSpan(Scheme.Length).Trim(' '), decoded, out var length))
        {
            return false;
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(decoded[..length], hash);
        var match = 0;
        foreach (var expected in _expected)
        {
            match |= CryptographicOperations.FixedTimeEquals(hash, expected) ? 1 : 0;
        }

        return match != 0;
    }
}
