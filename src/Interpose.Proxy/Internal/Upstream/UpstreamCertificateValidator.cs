using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Validates an origin's certificate (chain, host name, validity) and remembers why it failed, so that the client's
/// 502 and the log can name the reason. One instance per connection attempt.
/// </summary>
internal sealed class UpstreamCertificateValidator(bool insecure, X509Certificate2Collection customRoots)
{
    /// <summary>Why the certificate was refused, in a few words; null when accepted.</summary>
    public string? FailureReason { get; private set; }

    /// <summary>
    /// The policy SslStream builds the origin's chain with: null for the system store, or, when --upstream-ca gave
    /// roots, those roots in place of the system store. Given to the handshake, so the chain is built once and against
    /// the right roots (building it against the system store first, then again here, cost 0.5 ms per connection:
    /// docs/performance.md).
    /// </summary>
    /// <returns>A new policy (SslStream keeps the instance it is given), or null.</returns>
    public X509ChainPolicy? CreateChainPolicy()
    {
        if (insecure || customRoots.Count == 0)
        {
            return null;
        }

        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            // Revocation needs the network (OCSP/CRL fetches); the proxy makes no connection the client did not ask for.
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.AddRange(customRoots);
        return policy;
    }

    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (insecure)
        {
            return true;
        }

        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            FailureReason = "the origin sent no certificate";
            return false;
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            FailureReason = "certificate name mismatch (the certificate is not for this host)";
            return false;
        }

        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            FailureReason = chain is null ? "certificate chain could not be built" : Describe(chain, certificate as X509Certificate2);
            return false;
        }

        return errors == SslPolicyErrors.None;
    }

    private static string Describe(X509Chain chain, X509Certificate2? leaf)
    {
        var flags = X509ChainStatusFlags.NoError;
        foreach (var status in chain.ChainStatus)
        {
            flags |= status.Status;
        }

        if ((flags & X509ChainStatusFlags.NotTimeValid) != 0)
        {
            return "certificate expired or not yet valid";
        }

        if ((flags & X509ChainStatusFlags.Revoked) != 0)
        {
            return "certificate revoked";
        }

        if ((flags & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0)
        {
            var selfSigned = leaf is not null && leaf.SubjectName.RawData.AsSpan().SequenceEqual(leaf.IssuerName.RawData);
            return selfSigned ? "self-signed certificate" : "certificate issued by an untrusted authority";
        }

        if ((flags & X509ChainStatusFlags.NotSignatureValid) != 0)
        {
            return "certificate signature invalid";
        }

        return "certificate not valid: " + flags;
    }
}
