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

        await AssertClientSideSuitesAsync(proxy.Port, proxy.CaPemPath, origin.Port);
    }

    [Fact]
    public async Task Upstream_client_hello_offers_only_tls_1_2_and_1_3_forward_secret_aead_and_sends_sni()
    {
        var captured = new TaskCompletionSource<ClientHello>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = ClientHelloCapture(captured);
        await using var proxy = await TestProxy.StartAsync(output);
        using var client = proxy.CreateClient();

        using var response = await client.GetAsync($"https://sni-check.test:{origin.Port}/");
        var hello = await captured.Task;

        Assert.Equal("sni-check.test", hello.ServerName);
        AssertForwardSecretAeadOnly(hello);
        Assert.Equal(System.Net.HttpStatusCode.BadGateway, response.StatusCode);
    }

    /// <summary>
    /// The command sets the same policy through OpenSSL's configuration (interpose-openssl.cnf as OPENSSL_CONF), not in
    /// code, so that .NET shares TLS contexts: the suites must be the library's on both sides all the same.
    /// </summary>
    [Fact]
    public async Task The_command_applies_the_same_suites_through_its_openssl_configuration()
    {
        using var home = new TempHome();
        await using var origin = await Origins.StartTlsAsync();
        var captured = new TaskCompletionSource<ClientHello>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var capture = ClientHelloCapture(captured);
        await using var proxy = await InterposeProcess.StartAsync(home.Path, "--upstream-ca", home.OriginRootPem, "--verbose");

        await AssertClientSideSuitesAsync(proxy.Port, proxy.CaPemPath, origin.Port);
        var curl = await ProcessResult.RunAsync("curl", ["--silent", "--proxy", proxy.Url.ToString(), "--noproxy", "", "--cacert", proxy.CaPemPath,
            "--output", "/dev/null", "--write-out", "%{http_code}", $"https://localhost:{capture.Port}/"]);
        var hello = await captured.Task;

        Assert.Equal("localhost", hello.ServerName);
        AssertForwardSecretAeadOnly(hello);
        Assert.Equal("502", curl.StandardOutput);

        // The path under test: the policy came from the OpenSSL configuration, not from code.
        Assert.Contains(proxy.StandardOutput.Concat(proxy.StandardError), line => line.Contains("from the OpenSSL configuration", StringComparison.Ordinal));
    }

    /// <summary>Static RSA and CBC suites are refused toward clients; ECDHE with AES-GCM is accepted (TLS 1.2).</summary>
    private static async Task AssertClientSideSuitesAsync(int proxyPort, string caPemPath, int originPort)
    {
        var staticRsa = await SClientAsync(proxyPort, caPemPath, originPort, "-tls1_2", "-cipher", "AES128-GCM-SHA256");
        var cbc = await SClientAsync(proxyPort, caPemPath, originPort, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256");
        var ecdhe = await SClientAsync(proxyPort, caPemPath, originPort, "-tls1_2", "-cipher", "ECDHE+AESGCM");

        Assert.Contains("Cipher is (NONE)", staticRsa.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("handshake failure", staticRsa.StandardError, StringComparison.Ordinal);
        Assert.Contains("Cipher is (NONE)", cbc.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("handshake failure", cbc.StandardError, StringComparison.Ordinal);
        Assert.Contains("New, TLSv1.2, Cipher is ECDHE-", ecdhe.StandardOutput, StringComparison.Ordinal);
    }

    private static void AssertForwardSecretAeadOnly(ClientHello hello)
    {
        Assert.Equal([0x0304, 0x0303], hello.SupportedVersions.Order().Reverse());
        Assert.All(hello.CipherSuites, suite => Assert.Contains(suite, ForwardSecretAead));
        Assert.Contains((ushort)0x1301, hello.CipherSuites);
    }

    /// <summary>An origin that records the first ClientHello it receives, then closes (the proxy's handshake fails: 502).</summary>
    private static RawOrigin ClientHelloCapture(TaskCompletionSource<ClientHello> captured) => new(async stream =>
    {
        var bytes = new List<byte>();
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var n = await stream.ReadBoundedAsync(buffer);
            if (n == 0)
            {
                captured.TrySetException(new EndOfStreamException("closed before a whole ClientHello"));
                return;
            }

            bytes.AddRange(buffer.AsSpan(0, n));
            var status = ClientHelloReader.TryRead(new ReadOnlySequence<byte>(bytes.ToArray()), out var hello);
            if (status != ClientHelloParseStatus.Incomplete)
            {
                captured.TrySetResult(hello ?? throw new InvalidDataException("not a ClientHello: " + status));
                return;
            }
        }
    });

    private static Task<ProcessResult> SClientAsync(TestProxy proxy, int originPort, params string[] extra) =>
        SClientAsync(proxy.Port, proxy.CaPemPath, originPort, extra);

    private static Task<ProcessResult> SClientAsync(int proxyPort, string caPemPath, int originPort, params string[] extra) =>
        ProcessResult.RunAsync("openssl",
        [
            "s_client", "-connect", $"localhost:{originPort}", "-proxy", $"127.0.0.1:{proxyPort}", "-servername", "localhost",
            "-CAfile", caPemPath, .. extra,
        ]);

    /// <summary>A temporary home for the command, with the test origins' root as a PEM file for --upstream-ca.</summary>
    private sealed class TempHome : IDisposable
    {
        public TempHome()
        {
            Path = Directory.CreateTempSubdirectory("interpose-tls-").FullName;
            OriginRootPem = System.IO.Path.Combine(Path, "origin-root.pem");
            File.WriteAllText(OriginRootPem, TestPki.OriginRoot.ExportCertificatePem());
        }

        public string Path { get; }

        public string OriginRootPem { get; }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
