using System.Buffers;
using Interpose.Core.Tls;
using Interpose.Proxy.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The TLS the proxy speaks, checked with real openssl toward clients and with the ClientHello it actually sends toward
/// origins: TLS 1.2/1.3 only, forward-secret AEAD suites only (NDSS 2017 grade A), SNI sent.
/// </summary>
public sealed class TlsPolicyTests(ITestOutputHelper output)
{
    /// <summary>TLS 1.3 suites and ECDHE with AES-GCM or ChaCha20-Poly1305 (IANA TLS Cipher Suites registry).</summary>
    private static readonly HashSet<ushort> ForwardSecretAead =
    [
        0x1301, 0x1302, 0x1303,
        0xC02B, 0xC02C, 0xC02F, 0xC030, 0xCCA8, 0xCCA9,
        0x00FF, // TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746): a signal, not a suite
    ];

    [Theory]
    [InlineData("-tls1")]
    [InlineData("-tls1_1")]
    public async Task Client_side_refuses_tls_1_0_and_1_1(string version)
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output);

        // SECLEVEL=0 so that OpenSSL 3 itself would allow the old protocol: the refusal must be the proxy's.
        var result = await SClientAsync(proxy, origin.Port, version, "-cipher", "DEFAULT:@SECLEVEL=0");

        Assert.NotEqual(0, result.ExitCode);
        Assert.DoesNotContain("Cipher is ECDHE", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Cipher is (NONE)", result.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("no protocols available", result.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("no ciphers available", result.StandardError, StringComparison.Ordinal);
        Assert.Contains("alert protocol version", result.StandardError, StringComparison.Ordinal); // the proxy said no (alert 70)
    }

    [Fact]
    public async Task Client_side_negotiates_tls_1_3_by_default()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output);

        var result = await SClientAsync(proxy, origin.Port);

        Assert.Contains("New, TLSv1.3, Cipher is TLS_", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_side_refuses_a_suite_without_forward_secrecy_and_accepts_ecdhe()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output);

        var staticRsa = await SClientAsync(proxy, origin.Port, "-tls1_2", "-cipher", "AES128-GCM-SHA256");
        var ecdhe = await SClientAsync(proxy, origin.Port, "-tls1_2", "-cipher", "ECDHE+AESGCM");

        Assert.Contains("Cipher is (NONE)", staticRsa.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("handshake failure", staticRsa.StandardError, StringComparison.Ordinal);
        Assert.Contains("New, TLSv1.2, Cipher is ECDHE-", ecdhe.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upstream_client_hello_offers_only_tls_1_2_and_1_3_forward_secret_aead_and_sends_sni()
    {
        var captured = new TaskCompletionSource<ClientHello>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = new RawOrigin(async stream =>
        {
            var bytes = new List<byte>();
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var n = await stream.ReadAsync(buffer);
                if (n == 0)
                {
                    captured.TrySetException(new EndOfStreamException("closed before a whole ClientHello"));
                    return;
                }

                bytes.AddRange(buffer.AsSpan(0, n));
                var status = ClientHelloReader.TryRead(new ReadOnlySequence<byte>(bytes.ToArray()), out var hello);
                if (status != ClientHelloParseStatus.Incomplete)
                {
                    // Closing now fails the proxy's handshake: the exchange ends in a 502, the hello is what matters.
                    captured.TrySetResult(hello ?? throw new InvalidDataException("not a ClientHello: " + status));
                    return;
                }
            }
        });
        await using var proxy = await TestProxy.StartAsync(output);
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync($"https://sni-check.test:{origin.Port}/");
        var hello = await captured.Task;

        Assert.Equal("sni-check.test", hello.ServerName);
        Assert.Equal([0x0304, 0x0303], hello.SupportedVersions.Order().Reverse());
        Assert.All(hello.CipherSuites, suite => Assert.Contains(suite, ForwardSecretAead));
        Assert.Contains((ushort)0x1301, hello.CipherSuites);
        Assert.Equal(System.Net.HttpStatusCode.BadGateway, response.StatusCode);
    }

    private static Task<ProcessResult> SClientAsync(TestProxy proxy, int originPort, params string[] extra) =>
        ProcessResult.RunAsync("openssl",
        [
            "s_client", "-connect", $"localhost:{originPort}", "-proxy", $"127.0.0.1:{proxy.Port}", "-servername", "localhost",
            "-CAfile", proxy.CaPemPath, .. extra,
        ]);
}
