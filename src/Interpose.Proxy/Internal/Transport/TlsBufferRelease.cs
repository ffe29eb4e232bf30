using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Lets OpenSSL free a TLS connection's record buffers whenever they are empty (<c>SSL_MODE_RELEASE_BUFFERS</c>), so
/// that an idle connection keeps its keys and state but not its 17 KiB read and 17 KiB write buffers; and frees the
/// buffers of the two memory BIOs .NET puts under OpenSSL when a connection goes idle (<see cref="ReleaseIdleBios(SslStream)"/>).
/// </summary>
/// <remarks>
/// <para>
/// On Linux, SslStream runs on OpenSSL and never sets this mode: every handshaken connection keeps both record buffers
/// for its whole life (OpenSSL sizes each for a whole record and its overhead, about 17 KiB), native memory that neither
/// the GC heap nor a zero-byte read gives back: setting the mode took an idle intercepted connection from 66 to 41 KiB
/// of RSS (docs/performance.md, "Idle connections"). nginx and Python's ssl module set it for the same reason. The cost
/// is a malloc and free of one record buffer per TLS read or write that empties it; docs/performance.md measures it
/// against the keep-alive load.
/// </para>
/// <para>
/// .NET exposes no API for it, so this reads SslStream's private OpenSSL handle and calls <c>SSL_ctrl</c> in the libssl
/// the runtime loaded. Anything unexpected (another TLS backend, a runtime whose field moved, a libssl that cannot be
/// identified) turns it off, and the connection simply keeps its buffers as before: it never fails a connection.
/// </para>
/// </remarks>
internal static unsafe class TlsBufferRelease
{
    /// <summary>openssl/ssl.h: <c>SSL_CTRL_MODE</c> (SSL_set_mode / SSL_get_mode are SSL_ctrl with this command).</summary>
    private const int SslCtrlMode = 33;

    /// <summary>openssl/ssl.h: <c>SSL_MODE_RELEASE_BUFFERS</c> (safe since OpenSSL 1.0.1h, CVE-2010-5298).</summary>
    private const nint SslModeReleaseBuffers = 0x10;

    /// <summary>openssl/bio.h: <c>BIO_CTRL_PENDING</c> (BIO_ctrl_pending: bytes written and not yet read).</summary>
    private const int BioCtrlPending = 10;

    /// <summary>openssl/bio.h: <c>BIO_C_SET_BUF_MEM</c> (BIO_set_mem_buf).</summary>
    private const int BioSetBufMem = 114;

    /// <summary>openssl/bio.h: <c>BIO_C_GET_BUF_MEM_PTR</c> (BIO_get_mem_ptr).</summary>
    private const int BioGetBufMemPtr = 115;

    /// <summary>openssl/bio.h: <c>BIO_TYPE_MEM</c>, the type of <c>BIO_s_mem()</c> (1 | BIO_TYPE_SOURCE_SINK).</summary>
    private const int BioTypeMem = 0x0401;

    /// <summary>openssl/bio.h: <c>BIO_CLOSE</c>: the BIO owns its buffer and frees it when it is replaced.</summary>
    private const nint BioClose = 1;

    /// <summary>
    /// The libssl names the runtime's OpenSSL shim tries, newest first (dotnet/runtime opensslshim.c), each with the
    /// libcrypto of the same version.
    /// </summary>
    private static readonly (string Ssl, string Crypto)[] LibraryNames = [("libssl.so.3", "libcrypto.so.3"), ("libssl.so.1.1", "libcrypto.so.1.1")];

    // SslStream's OpenSSL connection on Unix: a SafeSslHandle whose handle is the SSL*.
    private static readonly FieldInfo? SecurityContext =
        typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>
    /// The runtime type of <c>_securityContext</c> on Linux (.NET 8 to 10): <c>SafeSslHandle</c>, whose handle is the
    /// <c>SSL*</c>. Any other type (an older runtime wrapped the SSL* in another handle) is left alone.
    /// </summary>
    private const string OpenSslHandleType = "SafeSslHandle";

    private static readonly OpenSsl? Native = OpenSsl.Load();

    /// <summary>Whether this process can set the mode (Linux, OpenSSL found, SslStream's handle readable).</summary>
    public static bool Supported => Native is not null && SecurityContext is not null;

    /// <summary>Sets <c>SSL_MODE_RELEASE_BUFFERS</c> on <paramref name="ssl"/>'s OpenSSL connection; call it after the handshake.</summary>
    /// <returns>Whether the mode is now set.</returns>
    public static bool TryEnable(SslStream ssl) => Control(ssl, SslCtrlMode, SslModeReleaseBuffers) is { } mode && (mode & SslModeReleaseBuffers) != 0;

    /// <summary>Whether <paramref name="ssl"/>'s OpenSSL connection has the mode set (tests).</summary>
    public static bool IsEnabled(SslStream ssl) => Control(ssl, SslCtrlMode, 0) is { } mode && (mode & SslModeReleaseBuffers) != 0;

    /// <summary>
    /// Frees the buffers of <paramref name="ssl"/>'s two memory BIOs when both are empty; call it when the connection
    /// goes idle, while no read or write of <paramref name="ssl"/> is in progress.
    /// </summary>
    /// <remarks>
    /// SslStream on Linux hands OpenSSL its input through one memory BIO and takes its output from another. A memory
    /// BIO's buffer grows to the largest amount ever written into it between two reads (plus a third: BUF_MEM grows by
    /// 4/3) and never shrinks: about 1.8 KiB per connection after a handshake and small exchanges, and about 22 KiB per
    /// direction once a connection carried full 16 KiB TLS records (docs/performance.md, "Idle connections, third
    /// pass"). A fresh empty buffer is put in each BIO instead (<c>BIO_set_mem_buf</c> with <c>BIO_CLOSE</c> frees the
    /// old one); the next write into it allocates again. A BIO still holding bytes keeps its buffer.
    /// </remarks>
    /// <returns>The bytes freed.</returns>
    public static long ReleaseIdleBios(SslStream ssl) => HandleOf(ssl) is { } handle ? ReleaseIdleBios(handle) : 0;

    /// <summary><see cref="ReleaseIdleBios(SslStream)"/> on the handle <see cref="HandleOf"/> returned.</summary>
    /// <returns>The bytes freed.</returns>
    public static long ReleaseIdleBios(SafeHandle handle) => WithSsl(handle, 0, static (native, s, _) => native.ReleaseBios(s)) ?? 0;

    /// <summary>The bytes <paramref name="ssl"/>'s memory BIOs hold allocated (logged with the idle events, and tests).</summary>
    public static long HeldBioBytes(SslStream ssl) => HandleOf(ssl) is { } handle ? HeldBioBytes(handle) : 0;

    /// <summary><see cref="HeldBioBytes(SslStream)"/> on the handle <see cref="HandleOf"/> returned.</summary>
    public static long HeldBioBytes(SafeHandle handle) => WithSsl(handle, 0, static (native, s, _) => native.BioBytes(s)) ?? 0;

    /// <summary>
    /// <paramref name="ssl"/>'s OpenSSL connection, once handshaken (it stays the same for the stream's life), for callers
    /// that release often; null when this process cannot release (another TLS backend, no OpenSSL found).
    /// </summary>
    public static SafeHandle? HandleOf(SslStream ssl) =>
        Supported && SecurityContext!.GetValue(ssl) is SafeHandle handle && handle.GetType().Name == OpenSslHandleType ? handle : null;

    /// <summary><c>SSL_ctrl(ssl, command, argument, NULL)</c>; SSL_CTRL_MODE ORs the argument into the mode and returns it.</summary>
    private static nint? Control(SslStream ssl, int command, nint argument) =>
        (nint?)WithSsl(ssl, (command, argument), static (native, s, c) => native.SslCtrl(s, c.command, c.argument, 0));

    /// <summary>Runs <paramref name="call"/> on <paramref name="ssl"/>'s <c>SSL*</c>, kept alive meanwhile; null when there is none.</summary>
    private static long? WithSsl<TState>(SslStream ssl, TState state, Func<OpenSsl, nint, TState, long> call) =>
        HandleOf(ssl) is { } handle ? WithSsl(handle, state, call) : null;

    /// <summary>Runs <paramref name="call"/> on the <c>SSL*</c> of <paramref name="handle"/> (from <see cref="HandleOf"/>),
    /// kept alive meanwhile; null when it is closed.</summary>
    private static long? WithSsl<TState>(SafeHandle handle, TState state, Func<OpenSsl, nint, TState, long> call)
    {
        if (handle.IsInvalid || handle.IsClosed)
        {
            return null;
        }

        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return call(Native!, handle.DangerousGetHandle(), state);
        }
        catch (ObjectDisposedException)
        {
            // The connection closed meanwhile: nothing to release.
            return null;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>openssl/buffer.h: <c>BUF_MEM</c>, a memory BIO's buffer (a public structure).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct BufMem
    {
        public nuint Length;
        public nint Data;
        public nuint Max;
        public nuint Flags;
    }

    /// <summary>The OpenSSL functions used here, from the libssl and libcrypto the runtime loaded.</summary>
    private sealed class OpenSsl
    {
        public delegate* unmanaged<nint, int, nint, nint, nint> SslCtrl;
        public delegate* unmanaged<nint, nint> SslGetReadBio;
        public delegate* unmanaged<nint, nint> SslGetWriteBio;
        public delegate* unmanaged<nint, int, nint, nint, nint> BioCtrl;
        public delegate* unmanaged<nint, int> BioMethodType;
        public delegate* unmanaged<nint> BufMemNew;

        public static OpenSsl? Load()
        {
            // The runtime picks its libssl itself unless told otherwise; with an override this cannot know which it took.
            if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("CLR_OPENSSL_VERSION_OVERRIDE") is not null)
            {
                return null;
            }

            foreach (var (sslName, cryptoName) in LibraryNames)
            {
                // Loading a library the runtime already loaded returns the same one (dlopen reference counting).
                if (!NativeLibrary.TryLoad(sslName, out var ssl) || !NativeLibrary.TryGetExport(ssl, "SSL_ctrl", out var sslCtrl))
                {
                    continue;
                }

                var native = new OpenSsl { SslCtrl = (delegate* unmanaged<nint, int, nint, nint, nint>)sslCtrl };
                if (NativeLibrary.TryLoad(cryptoName, out var crypto)
                    && NativeLibrary.TryGetExport(ssl, "SSL_get_rbio", out var rbio)
                    && NativeLibrary.TryGetExport(ssl, "SSL_get_wbio", out var wbio)
                    && NativeLibrary.TryGetExport(crypto, "BIO_ctrl", out var bioCtrl)
                    && NativeLibrary.TryGetExport(crypto, "BIO_method_type", out var methodType)
                    && NativeLibrary.TryGetExport(crypto, "BUF_MEM_new", out var bufMemNew))
                {
                    native.SslGetReadBio = (delegate* unmanaged<nint, nint>)rbio;
                    native.SslGetWriteBio = (delegate* unmanaged<nint, nint>)wbio;
                    native.BioCtrl = (delegate* unmanaged<nint, int, nint, nint, nint>)bioCtrl;
                    native.BioMethodType = (delegate* unmanaged<nint, int>)methodType;
                    native.BufMemNew = (delegate* unmanaged<nint>)bufMemNew;
                }

                return native;
            }

            return null;
        }

        private bool HasBios => BufMemNew is not null;

        public long ReleaseBios(nint ssl)
        {
            if (!HasBios)
            {
                return 0;
            }

            var read = SslGetReadBio(ssl);
            var write = SslGetWriteBio(ssl);
            if (!IsEmptyMemoryBio(read) || !IsEmptyMemoryBio(write))
            {
                return 0;
            }

            return Release(read) + (write == read ? 0 : Release(write));
        }

        public long BioBytes(nint ssl)
        {
            if (!HasBios)
            {
                return 0;
            }

            var read = SslGetReadBio(ssl);
            var write = SslGetWriteBio(ssl);
            return Allocated(read) + (write == read ? 0 : Allocated(write));
        }

        private bool IsEmptyMemoryBio(nint bio) => bio != 0 && BioMethodType(bio) == BioTypeMem && BioCtrl(bio, BioCtrlPending, 0, 0) == 0;

        private long Allocated(nint bio)
        {
            if (bio == 0 || BioMethodType(bio) != BioTypeMem)
            {
                return 0;
            }

            BufMem* buffer = null;
            BioCtrl(bio, BioGetBufMemPtr, 0, (nint)(&buffer));
            return buffer is null ? 0 : (long)buffer->Max;
        }

        private long Release(nint bio)
        {
            var held = Allocated(bio);
            if (held == 0)
            {
                return 0;
            }

            var fresh = BufMemNew();
            if (fresh == 0)
            {
                // Out of memory: the old buffer simply stays.
                return 0;
            }

            // bss_mem.c: frees the old BUF_MEM (the BIO was created with BIO_CLOSE) and reads and writes the new one.
            BioCtrl(bio, BioSetBufMem, BioClose, fresh);
            return held;
        }
    }
}
