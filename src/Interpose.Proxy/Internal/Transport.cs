using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;

namespace Interpose.Proxy.Internal;

/// <summary>
/// One side of a proxied connection: the socket, the stream written to (plain or TLS) and the pipe read from.
/// Owned by exactly one flow, which disposes it.
/// </summary>
internal sealed class Transport : IAsyncDisposable
{
    /// <summary>Read buffer size: 16 KiB, one maximum TLS record, so a record decrypts into one pipe segment.</summary>
    private const int ReadBufferSize = 16 * 1024;

    private Stream? _rawStream;
    private PipeReader? _rawInput;
    private int _disposed;

    public Transport(Socket socket, Stream stream)
    {
        Socket = socket;
        Stream = stream;
        Input = CreateReader(stream);
    }

    public Socket Socket { get; }

    /// <summary>What writes go to: the network stream, or the TLS stream once upgraded.</summary>
    public Stream Stream { get; private set; }

    /// <summary>What reads come from; bytes not consumed stay for the next reader (pipelining, sniffing).</summary>
    public PipeReader Input { get; private set; }

    public bool IsTls => Stream is SslStream;

    /// <summary>
    /// Layers TLS over what was read so far (the ClientHello still sits unconsumed in <see cref="Input"/>) and the
    /// socket. After the handshake, reads and writes go through the returned stream.
    /// </summary>
    public SslStream WrapInTls()
    {
        _rawStream = Stream;
        _rawInput = Input;
        var ssl = new SslStream(new PipeReaderDuplexStream(_rawInput, _rawStream), leaveInnerStreamOpen: true);
        Stream = ssl;
        Input = CreateReader(ssl);
        return ssl;
    }

    /// <summary>Uses <paramref name="ssl"/> (already authenticated over this socket's stream) from now on.</summary>
    public void UseTls(SslStream ssl)
    {
        _rawStream = Stream;
        _rawInput = Input;
        Stream = ssl;
        Input = CreateReader(ssl);
    }

    /// <summary>Half-close: tell the peer no more bytes will come (TLS close_notify first when encrypted).</summary>
    public async ValueTask ShutdownWriteAsync()
    {
        if (Stream is SslStream ssl)
        {
            await ssl.ShutdownAsync();
        }

        Socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>True when the peer has not closed an idle connection (no pending bytes, no FIN seen).</summary>
    public bool IsIdleAndOpen()
    {
        try
        {
            // An idle pooled connection must have nothing to read: readable means FIN (0 bytes) or stray bytes,
            // either way it must not carry the next request.
            return Socket.Connected && !Socket.Poll(0, SelectMode.SelectRead);
        }
        catch (SocketException)
        {
            return false;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Input.CompleteAsync();
        if (_rawInput is not null)
        {
            await _rawInput.CompleteAsync();
        }

        await Stream.DisposeAsync();
        if (_rawStream is not null)
        {
            await _rawStream.DisposeAsync();
        }

        Socket.Dispose();
    }

    private static PipeReader CreateReader(Stream stream) =>
        PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: ReadBufferSize, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true));
}
