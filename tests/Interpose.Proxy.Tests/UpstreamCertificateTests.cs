using System.Net;
using System.Security.Cryptography.X509Certificates;
using Interpose.Proxy.Internal;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>Origins with bad certificates are refused with a 502 that names the reason, unless --ssl-insecure.</summary>
public sealed class UpstreamCertificateTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> BadCertificates => new()
    {
        { "expired", "expired" },
        { "wrong-host", "name mismatch" },
        { "self-signed", "self-signed" },
        { "untrusted", "untrusted authority" },
    };

    [Theory]
    [MemberData(nameof(BadCertificates))]
    public async Task Bad_origin_certificate_gives_502_with_the_reason(string kind, string reason)
    {
        await using var origin = await KestrelOrigin.StartAsync(Origins.MapBasics, Certificate(kind));
        await using var proxy = await TestProxy.StartAsync(output);
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync(origin.Url("/hello"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains(reason, body, StringComparison.Ordinal);
        Assert.Contains("localhost:" + origin.Port, body, StringComparison.Ordinal);
        Assert.Contains("tls", body, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(BadCertificates))]
    public async Task Ssl_insecure_lets_bad_certificates_pass(string kind, string reason)
    {
        _ = reason;
        await using var origin = await KestrelOrigin.StartAsync(Origins.MapBasics, Certificate(kind));
        await using var proxy = await TestProxy.StartAsync(output, o => o.SslInsecure = true);
        using var client = proxy.CreateClient();

        Assert.Equal("hello from origin", await client.GetStringAsync(origin.Url("/hello")));
    }

    [Fact]
    public void Upstream_roots_are_the_handshakes_only_trust_and_the_chain_is_built_once_against_them()
    {
        var roots = new X509Certificate2Collection(TestPki.OriginRoot);

        var policy = new UpstreamCertificateValidator(insecure: false, roots).CreateChainPolicy();

        Assert.NotNull(policy);
        Assert.Equal(X509ChainTrustMode.CustomRootTrust, policy.TrustMode);
        Assert.Equal(TestPki.OriginRoot, Assert.Single(policy.CustomTrustStore));
        Assert.Equal(X509RevocationMode.NoCheck, policy.RevocationMode);

        // No roots given: the system store, SslStream's default. Insecure: nothing is checked, so no policy either.
        Assert.Null(new UpstreamCertificateValidator(insecure: false, []).CreateChainPolicy());
        Assert.Null(new UpstreamCertificateValidator(insecure: true, roots).CreateChainPolicy());
    }

    private static X509Certificate2 Certificate(string kind) => kind switch
    {
        "expired" => TestPki.Issue(TestPki.OriginRoot, "localhost", DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(-1)),
        "wrong-host" => TestPki.Issue(TestPki.OriginRoot, "elsewhere.test"),
        "self-signed" => TestPki.SelfSigned("localhost"),
        "untrusted" => TestPki.Issue(TestPki.CreateRoot("Some Other Root"), "localhost"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
