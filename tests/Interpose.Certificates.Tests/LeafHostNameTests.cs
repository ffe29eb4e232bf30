namespace Interpose.Certificates.Tests;

public sealed class LeafHostNameTests
{
    [Theory]
    [InlineData("example.com", "example.com")]
    [InlineData("Example.COM", "example.com")]
    [InlineData("example.com.", "example.com")]
    [InlineData("xn--bcher-kva.example", "xn--bcher-kva.example")]
    [InlineData("_dmarc.example.com", "_dmarc.example.com")]
    [InlineData("localhost", "localhost")]
    [InlineData("10.0.0.1", "10.0.0.1")]
    [InlineData("::1", "::1")]
    [InlineData("[::1]", "::1")]
    [InlineData("[FE80::1]", "fe80::1")]
    public void Valid_names_are_canonicalised(string asked, string expected)
    {
        Assert.Equal(expected, LeafHostName.Parse(asked).Name);
    }

    [Fact]
    public void Ip_literals_carry_their_address_and_dns_names_do_not()
    {
        Assert.NotNull(LeafHostName.Parse("192.0.2.1").Address);
        Assert.NotNull(LeafHostName.Parse("[2001:db8::1]").Address);
        Assert.Null(LeafHostName.Parse("host.example").Address);
    }

    public static TheoryData<string> InvalidNames() => new()
    {
        string.Empty,
        ".",
        "*.example.com",
        "www.*.example.com",
        "a..example.com",
        ".example.com",
        "-a.example.com",
        "a-.example.com",
        "exa mple.com",
        "exa\nmple.com",
        "b\u00fccher.example",
        "example.com:443",
        "[::1",
        "[example.com]",
        "fe80::1%eth0",
        "1.2.3.256",
        "user@example.com",
        new string('a', 64) + ".example.com",
        string.Join('.', Enumerable.Repeat(new string('a', 63), 4)) + ".com",
    };

    [Theory]
    [MemberData(nameof(InvalidNames))]
    public void Invalid_names_are_a_one_line_certificate_exception(string name)
    {
        var error = Assert.Throws<CertificateException>(() => LeafHostName.Parse(name));

        Assert.StartsWith("Cannot forge a certificate for", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Longest_valid_name_is_253_characters()
    {
        var name = string.Join('.', Enumerable.Repeat(new string('a', 63), 3)) + "." + new string('b', 61);
        Assert.Equal(253, name.Length);
        Assert.Equal(name, LeafHostName.Parse(name).Name);
        Assert.Throws<CertificateException>(() => LeafHostName.Parse(name + "b"));
    }
}
