using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;

namespace Interpose.Proxy.Internal;

/// <summary>
/// One side of a proxied connection: the socket, the stream written to (plain or TLS) and the pipe read from.
/// Owned by exactly one flow, which disposes it. Without a socket (in-memory connections in tests) the stream is the
/// whole connection and the socket-level tuning is skipped.
/// </summary>
internal sealed class Transport : IAsyncDisposable
{
    /// <summary>Read buffer size: 16 KiB, one maximum TLS record, so a record decrypts into one pipe segment.</summary>
    private const int ReadBufferSize = 16 * 1024;

    /// <summary>Linux tcp(7): socket level IPPROTO_TCP and option TCP_CORK (netinet/tcp.h).</summary>
    private const int IpProtoTcp = 6;
    private const int TcpCork = 3;

    /// <summary>
    /// Two idle starts closer than this (one exchange and the wait before it: 1 s) make a connection busy: it keeps its
    /// TLS memory BIO buffers while they are small (<see cref="KeptWhileBusyBytes"/>). Giving them back before every
    /// request of a keep-alive connection, and allocating them again for the next, cost about 3 µs of proxy CPU per
    /// exchange at https-1k-c64 (native calls, two frees and two mallocs per side; docs/performance.md, "Recording,
    /// seventh look").
    /// </summary>
    private static readonly TimeSpan BusyGap = TimeSpan.FromSeconds(1);

    /// <summary>The BIO buffers a busy connection keeps between exchanges: 4 KiB for both, what requests and answers of
    /// a few KiB grow them to (about 2 KiB after a 1 KiB answer). Larger ones (about 22 KiB per direction after full
    /// 16 KiB records) are given back all the same.</summary>
    private const long KeptWhileBusyBytes = 4 * 1024;

    private ConnectionBuffers? _buffers;
    private SslStream? _releasing;
    private System.Runtime.InteropServices.SafeHandle? _tlsHandle;
    private long? _idleSince;
    private Stream? _rawStream;
    private PipeReader? _rawInput;
    private PipeReaderDuplexStream? _tlsUnder;
    private HandOffStream? _handOff;
    private int _disposed;
    private bool _segmentsHeld;

    public Transport(Socket? socket, Stream stream)
    {
        Socket = socket;
        Stream = stream;
        Input = CreateReader(stream, Buffers);
        _handOff = stream as HandOffStream;
    }

    /// <summary>A transport whose reads come from <paramref name="input"/> (an HTTP/2 origin stream's body).</summary>
    public Transport(Stream stream, PipeReader input)
    {
        Stream = stream;
        Input = input;
    }

    public Socket? Socket { get; }

    /// <summary>The connection's pooled buffers: its read pipes' segments and the scratch buffers lent to it.</summary>
    public ConnectionBuffers Buffers => _buffers ??= new();

    /// <summary>What writes go to: the network stream, or the TLS stream once upgraded.</summary>
    public Stream Stream { get; private set; }

    /// <summary>What reads come from; bytes not consumed stay for the next reader (pipelining, sniffing).</summary>
    public PipeReader Input { get; private set; }

    /// <summary>
    /// Layers TLS over what was read so far (the ClientHello still sits unconsumed in <see cref="Input"/>) and the
    /// socket. After the handshake, reads and writes go through the returned stream.
    /// </summary>
    public SslStream WrapInTls()
    {
        _rawStream = Stream;
        // The pipe read so far is the TLS stream's to drain (and to complete): then it reads the socket directly.
        _tlsUnder = new PipeReaderDuplexStream(Input, _rawStream);
        var ssl = new SslStream(_tlsUnder, leaveInnerStreamOpen: true);
        Stream = ssl;
        Input = CreateReader(ssl, Buffers);
        return ssl;
    }

    /// <summary>
    /// The connection is set up (its first request or response head is in hand): its reads no longer hand off to the
    /// thread pool (<see cref="HandOffStream"/>, when the transport was made over one). Idempotent and cheap after the first call.
    /// </summary>
    public void EndSetUp()
    {
        if (_handOff is { } handOff)
        {
            handOff.EndSetUp();
            _handOff = null;
        }
    }

    /// <summary>Uses <paramref name="ssl"/> (already authenticated over this socket's stream) from now on.</summary>
    public void UseTls(SslStream ssl)
    {
        _rawStream = Stream;
        _rawInput = Input;
        Stream = ssl;
        Input = CreateReader(ssl, Buffers);
    }

    /// <summary>
    /// The connection goes idle: TLS gives back its memory BIOs' buffers (<see cref="TlsBufferRelease.ReleaseIdleBios(SslStream)"/>),
    /// unless the connection is busy (it went idle less than <see cref="BusyGap"/> before) and they hold at most
    /// <see cref="KeptWhileBusyBytes"/>. Call it only while no read or write is in progress on <see cref="Stream"/>.
    /// </summary>
    /// <param name="time">The proxy's clock.</param>
    /// <param name="afterExchange">Whether an exchange on this connection just ended; false for the wait before the first
    /// request (after the handshake, which tells nothing of how busy the connection will be: it always gives back).</param>
    public void ReleaseIdleTlsBuffers(TimeProvider time, bool afterExchange = true)
    {
        if (Stream is not SslStream ssl)
        {
            return;
        }

        if (!ReferenceEquals(ssl, _releasing))
        {
            // The handle is read once per TLS stream (through reflection: TlsBufferRelease), not once per exchange.
            _releasing = ssl;
            _tlsHandle = TlsBufferRelease.HandleOf(ssl);
        }

        var now = time.GetTimestamp();
        var busy = afterExchange && _idleSince is { } since && time.GetElapsedTime(since, now) < BusyGap;
        if (afterExchange)
        {
            _idleSince = now;
        }

        if (_tlsHandle is not { } handle || (busy && TlsBufferRelease.HeldBioBytes(handle) <= KeptWhileBusyBytes))
        {
            return;
        }

        TlsBufferRelease.ReleaseIdleBios(handle);
    }

    /// <summary>The bytes the TLS stream's memory BIOs hold (0 on a plain connection), for the idle events.</summary>
    public long TlsBioBytes => Stream is SslStream ssl ? TlsBufferRelease.HeldBioBytes(ssl) : 0;

    /// <summary>Half-close: tell the peer no more bytes will come (TLS close_notify first when encrypted).</summary>
    public async ValueTask ShutdownWriteAsync()
    {
        if (Stream is SslStream ssl)
        {
            await ssl.ShutdownAsync();
        }

        Socket?.Shutdown(SocketShutdown.Send);
    }

    /// <summary>
    /// Lets the kernel hold back partially filled TCP segments (Linux <c>TCP_CORK</c>) while a bulk body is relayed:
    /// the 16 KiB TLS records written meanwhile leave in full-sized segments (about 64 KiB on loopback), so the
    /// kernel sends, acknowledges and wakes the receiver a quarter as often. Nothing waits on it for long, because the
    /// relay calls <see cref="ReleaseSegments"/> before it waits for more input. Elsewhere than on Linux, nothing.
    /// </summary>
    public void HoldSegments()
    {
        if (!_segmentsHeld && Socket is not null && OperatingSystem.IsLinux())
        {
            _segmentsHeld = SetCork(1);
        }
    }

    /// <summary>Sends what <see cref="HoldSegments"/> held back, now, and stops holding.</summary>
    public void ReleaseSegments()
    {
        if (_segmentsHeld)
        {
            _segmentsHeld = false;
            SetCork(0);
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
        if (_tlsUnder is not null)
        {
            await _tlsUnder.DisposeAsync();
        }

        if (_rawStream is not null)
        {
            await _rawStream.DisposeAsync();
        }

        Socket?.Dispose();
    }

    private bool SetCork(int value)
    {
        Span<byte> option = stackalloc byte[sizeof(int)];
        BitConverter.TryWriteBytes(option, value);
        try
        {
            Socket!.SetRawSocketOption(IpProtoTcp, TcpCork, option);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The socket is closing or closed: the relay's next write or read fails and reports it with its phase;
            // holding segments was only an optimisation.
            return false;
        }
    }

    // Zero-byte reads: a read waits for data before it rents a segment, so a connection waiting for its next request
    // holds none (and SslStream, given a zero-byte read, returns its own buffer too: .NET 7+).
    private static PipeReader CreateReader(Stream stream, ConnectionBuffers buffers) =>
        PipeReader.Create(stream, new StreamPipeReaderOptions(pool: buffers, bufferSize: ReadBufferSize, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true));
}
