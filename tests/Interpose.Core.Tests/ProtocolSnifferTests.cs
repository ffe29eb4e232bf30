using System.Buffers;
using System.Text;
using Interpose.Core.Tests.Corpus;

namespace Interpose.Core.Tests;

public class ProtocolSnifferTests
{
    [Theory]
    [InlineData("", SniffedProtocol.NeedMoreData)]
    [InlineData("G", SniffedProtocol.NeedMoreData)]
    [InlineData("GET", SniffedProtocol.NeedMoreData)]
    [InlineData("GET ", SniffedProtocol.Http)]
    [InlineData("CONNECT example.test:443 HTTP/1.1", SniffedProtocol.Http)]
    [InlineData("M-SEARCH * HTTP/1.1", SniffedProtocol.Http)]
    [InlineData("PRI * HTTP/2.0", SniffedProtocol.Http)]
    [InlineData("get / HTTP/1.1", SniffedProtocol.Unknown)]
    [InlineData(" GET", SniffedProtocol.Unknown)]
    [InlineData("GET\t/", SniffedProtocol.Unknown)]
    [InlineData("SSH-2.0-OpenSSH", SniffedProtocol.Unknown)]
    [InlineData("ABCDEFGHIJKLMNOPQRSTUVWXY", SniffedProtocol.Unknown)]
    public void Text_prefixes(string text, SniffedProtocol expected)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(text);
        Assert.Equal(expected, ProtocolSniffer.Detect(new ReadOnlySequence<byte>(bytes)));
        if (bytes.Length > 1)
        {
            Assert.Equal(expected, ProtocolSniffer.Detect(SegmentedSequence.Chunked(bytes, 1)));
        }
    }

    [Theory]
    [InlineData(new byte[] { 0x16 }, SniffedProtocol.NeedMoreData)]
    [InlineData(new byte[] { 0x16, 0x03 }, SniffedProtocol.NeedMoreData)]
    [InlineData(new byte[] { 0x16, 0x03, 0x01 }, SniffedProtocol.Tls)]
    [InlineData(new byte[] { 0x16, 0x03, 0x03, 0x00 }, SniffedProtocol.Tls)]
    [InlineData(new byte[] { 0x16, 0x03, 0x05 }, SniffedProtocol.Unknown)]
    [InlineData(new byte[] { 0x16, 0x02 }, SniffedProtocol.Unknown)]
    [InlineData(new byte[] { 0x17, 0x03, 0x03 }, SniffedProtocol.Unknown)]
    [InlineData(new byte[] { 0x00 }, SniffedProtocol.Unknown)]
    public void Binary_prefixes(byte[] bytes, SniffedProtocol expected)
    {
        Assert.Equal(expected, ProtocolSniffer.Detect(new ReadOnlySequence<byte>(bytes)));
    }

    [Fact]
    public async Task Real_client_hello_is_tls()
    {
        byte[] hello = await TlsHelloCapture.DefaultHelloAsync();
        Assert.Equal(SniffedProtocol.Tls, ProtocolSniffer.Detect(new ReadOnlySequence<byte>(hello)));
    }
}
