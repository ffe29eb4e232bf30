using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Lets OpenSSL free a TLS connection's record buffers whenever they are empty (<c>SSL_MODE_RELEASE_BUFFERS</c>), so
/// that an idle connection keeps its keys and state but not its 17 KiB read and 17 KiB write buffers.
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

    /// <summary>The libssl names the runtime's OpenSSL shim tries, newest first (dotnet/runtime opensslshim.c).</summary>
    private static readonly string[] LibSslNames = ["libssl.so.3", "libssl.so.1.1"];

    // SslStream's OpenSSL connection on Unix: a SafeSslHandle whose handle is the SSL*.
    private static readonly FieldInfo? SecurityContext =
        typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>
    /// The runtime type of <c>_securityContext</c> on Linux (.NET 8 to 10): <c>SafeSslHandle</c>, whose handle is the
    /// <c>SSL*</c>. Any other type (an older runtime wrapped the SSL* in another handle) is left alone.
    /// </summary>
    private const string OpenSslHandleType = "SafeSslHandle";

    private static readonly delegate* unmanaged<nint, int, nint, nint, nint> SslCtrl = FindSslCtrl();

    /// <summary>Whether this process can set the mode (Linux, OpenSSL found, SslStream's handle readable).</summary>
    public static bool Supported => SslCtrl is not null && SecurityContext is not null;

    /// <summary>Sets <c>SSL_MODE_RELEASE_BUFFERS</c> on <paramref name="ssl"/>'s OpenSSL connection; call it after the handshake.</summary>
    /// <returns>Whether the mode is now set.</returns>
    public static bool TryEnable(SslStream ssl) => Control(ssl, SslCtrlMode, SslModeReleaseBuffers) is { } mode && (mode & SslModeReleaseBuffers) != 0;

    /// <summary>Whether <paramref name="ssl"/>'s OpenSSL connection has the mode set (tests).</summary>
    public static bool IsEnabled(SslStream ssl) => Control(ssl, SslCtrlMode, 0) is { } mode && (mode & SslModeReleaseBuffers) != 0;

    /// <summary><c>SSL_ctrl(ssl, command, argument, NULL)</c>; SSL_CTRL_MODE ORs the argument into the mode and returns it.</summary>
    private static nint? Control(SslStream ssl, int command, nint argument)
    {
        if (!Supported || SecurityContext!.GetValue(ssl) is not SafeHandle handle || handle.IsInvalid || handle.GetType().Name != OpenSslHandleType)
        {
            return null;
        }

        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return SslCtrl(handle.DangerousGetHandle(), command, argument, 0);
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

    private static delegate* unmanaged<nint, int, nint, nint, nint> FindSslCtrl()
    {
        // The runtime picks its libssl itself unless told otherwise; with an override this cannot know which it took.
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("CLR_OPENSSL_VERSION_OVERRIDE") is not null)
        {
            return null;
        }

        foreach (var name in LibSslNames)
        {
            // Loading a library the runtime already loaded returns the same one (dlopen reference counting).
            if (NativeLibrary.TryLoad(name, out var library) && NativeLibrary.TryGetExport(library, "SSL_ctrl", out var export))
            {
                return (delegate* unmanaged<nint, int, nint, nint, nint>)export;
            }
        }

        return null;
    }
}
