using System.Buffers;
using Interpose.Core.Tests.Corpus;
using Interpose.Core.Tls;

namespace Interpose.Core.Tests;

public class ClientHelloReaderTests
{
    [Fact]
    public async Task Real_dotnet_hello_exposes_sni_alpn_and_versions()
    {
        byte[] hello = await TlsHelloCapture.DefaultHelloAsync();
        Assert.Equal(ClientHelloParseStatus.Parsed, ClientHelloReader.TryRead(new ReadOnlySequence<byte>(hello), out ClientHello? parsed));
        Assert.NotNull(parsed);
        Assert.Equal("example.test", parsed.ServerName);
        Assert.Equal(["h2", "http/1.1"], parsed.ApplicationProtocols);
        Assert.Equal(0x0303, parsed.LegacyVersion);
        Assert.Contains((ushort)0x0303, parsed.SupportedVersions);
        Assert.NotEmpty(parsed.CipherSuites);
        Assert.Contains((ushort)0, parsed.ExtensionTypes);
        Assert.Equal(hello.Length, parsed.Length);
    }

    [Fact]
    public async Task Real_hello_truncated_at_every_length_is_incomplete()
    {
        byte[] hello = await TlsHelloCapture.DefaultHelloAsync();
        for (int n = 0; n < hello.Length; n++)
        {
            Assert.Equal(ClientHelloParseStatus.Incomplete, ClientHelloReader.TryRead(new ReadOnlySequence<byte>(hello, 0, n), out ClientHello? parsed));
            Assert.Null(parsed);
        }
    }

    [Fact]
    public async Task Real_hello_split_into_segments_parses_the_same()
    {
        byte[] hello = await TlsHelloCapture.DefaultHelloAsync();
        for (int split = 1; split < hello.Length; split++)
        {
            ReadOnlySequence<byte> seq = SegmentedSequence.Create(hello[..split], hello[split..]);
            Assert.Equal(ClientHelloParseStatus.Parsed, ClientHelloReader.TryRead(seq, out ClientHello? parsed));
            Assert.Equal("example.test", parsed!.ServerName);
        }

        Assert.Equal(ClientHelloParseStatus.Parsed, ClientHelloReader.TryRead(SegmentedSequence.Chunked(hello, 1), out ClientHello? bytewise));
        Assert.Equal(["h2", "http/1.1"], bytewise!.ApplicationProtocols);
    }

    [Fact]
    public async Task Random_corruption_never_throws()
    {
        byte[] hello = await TlsHelloCapture.DefaultHelloAsync();
        var random = new Random(20261124);
        for (int i = 0; i < 5000; i++)
        {
            byte[] copy = (byte[])hello.Clone();
            int flips = random.Next(1, 4);
            for (int f = 0; f < flips; f++)
            {
                copy[random.Next(copy.Length)] = (byte)random.Next(256);
            }

            int length = random.Next(copy.Length + 1);
            ClientHelloParseStatus status = ClientHelloReader.TryRead(new ReadOnlySequence<byte>(copy, 0, length), out ClientHello? parsed);
            Assert.Equal(status == ClientHelloParseStatus.Parsed, parsed is not null);
        }
    }

    [Fact]
    public void Hello_spread_over_many_records_is_reassembled()
    {
        byte[] message = ClientHelloBuilder.Message("multi.example.test", ["http/1.1"], [0x0304, 0x0303], [0x1301, 0x0a0a]);
        foreach (int fragment in new[] { 1, 2, 3, 5, 50 })
        {
            byte[] records = ClientHelloBuilder.Records(message, fragment);
            Assert.Equal(ClientHelloParseStatus.Parsed, ClientHelloReader.TryRead(new ReadOnlySequence<byte>(records), out ClientHello? parsed));
            Assert.Equal("multi.example.test", parsed!.ServerName);
            Assert.Equal(["http/1.1"], parsed.ApplicationProtocols);
            Assert.Equal([(ushort)0x0304, (ushort)0x0303], parsed.SupportedVersions);
            Assert.Equal([(ushort)0x1301, (ushort)0x0a0a], parsed.CipherSuites);
            Assert.Equal(records.Length, parsed.Length);

            for (int n = 0; n < records.Length; n++)
            {
                Assert.Equal(ClientHelloParseStatus.Incomplete, ClientHelloReader.TryRead(new ReadOnlySequence<byte>(records, 0, n), out _));
            }
        }
    }

    [Fact]
    public void Trailing_bytes_after_the_hello_are_ignored()
    {
        byte[] records = [.. ClientHelloBuilder.Records(ClientHelloBuilder.Message("a.test")), 0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
        Assert.Equal(ClientHelloParseStatus.Parsed, ClientHelloReader.TryRead(new ReadOnlySequence<byte>(records), out ClientHello? parsed));
        Assert.Equal("a.test", parsed!.ServerName);
    }

    [Fact]
    public void Hello_without_sni_or_extensions_parses()
    {
        Assert.Equal(ClientHelloParseStatus.Parsed, ClientHelloReader.TryRead(new ReadOnlySequence<byte>(ClientHelloBuilder.Records(ClientHelloBuilder.Message(null))), out ClientHello? parsed));
        Assert.Null(parsed!.ServerName);
        Assert.Empty(parsed.ApplicationProtocols);
        Assert.Empty(parsed.SupportedVersions);
    }

    [Theory]
    [InlineData(new byte[] { 0x47, 0x45, 0x54, 0x20 })]
    [InlineData(new byte[] { 0x16, 0x02 })]
    [InlineData(new byte[] { 0x16, 0x03, 0x05 })]
    [InlineData(new byte[] { 0x80, 0x2e, 0x01 })]
    [InlineData(new byte[] { 0x17, 0x03, 0x03, 0x00, 0x10 })]
    public void Non_tls_is_reported(byte[] bytes)
    {
        Assert.Equal(ClientHelloParseStatus.NotTls, ClientHelloReader.TryRead(new ReadOnlySequence<byte>(bytes), out _));
    }

    [Fact]
    public void Malformed_hellos_are_invalid()
    {
        byte[] good = ClientHelloBuilder.Message("a.test", ["h2"]);

        // Not a ClientHello handshake type.
        byte[] serverHello = (byte[])good.Clone();
        serverHello[0] = 2;
        AssertInvalid(ClientHelloBuilder.Records(serverHello));

        // Empty record, record over 2^14.
        AssertInvalid([0x16, 0x03, 0x01, 0x00, 0x00]);
        AssertInvalid([0x16, 0x03, 0x01, 0x40, 0x01, 0x01]);

        // Handshake length over the 64 KiB cap, detected from the header alone.
        AssertInvalid([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x01]);

        // A non-handshake record in the middle of the hello.
        byte[] split = ClientHelloBuilder.Records(good, 10);
        split[15] = 0x17;
        AssertInvalid(split);

        // Duplicate SNI extension; SNI with a control character; empty ALPN name.
        byte[] sniExt = ClientHelloBuilder.Extension(0, [0x00, 0x04, 0x00, 0x00, 0x01, (byte)'b']);
        AssertInvalid(ClientHelloBuilder.Records(ClientHelloBuilder.Message("a.test", extraExtensions: [sniExt])));
        AssertInvalid(ClientHelloBuilder.Records(ClientHelloBuilder.Message("a\u0001.test")));
        AssertInvalid(ClientHelloBuilder.Records(ClientHelloBuilder.Message("a.test", [""])));

        // Extension length running past the message.
        byte[] overrun = (byte[])good.Clone();
        overrun[^3] = 0xFF;
        AssertInvalid(ClientHelloBuilder.Records(overrun));
    }

    private static void AssertInvalid(byte[] bytes)
    {
        Assert.Equal(ClientHelloParseStatus.Invalid, ClientHelloReader.TryRead(new ReadOnlySequence<byte>(bytes), out ClientHello? parsed));
        Assert.Null(parsed);
    }
}
