using Interpose.Core.Tls;

namespace Interpose.Core.Tests;

/// <summary>RFC 6066 §3: the server name is a bare host name; clients that append a port get it dropped.</summary>
public class ServerNameTests
{
    [Theory]
    [InlineData("localhost:8443", "localhost")]
    [InlineData("example.test:1", "example.test")]
    [InlineData("localhost", "localhost")]
    [InlineData("::1", "::1")]
    [InlineData("localhost:", "localhost:")]
    [InlineData("localhost:x1", "localhost:x1")]
    [InlineData(null, null)]
    public void A_port_after_the_server_name_is_dropped(string? sni, string? expected) =>
        Assert.Equal(expected, ServerName.WithoutPort(sni));
}
