using System.Runtime.InteropServices;

namespace Interpose.Cli;

/// <summary>Native allocator settings for the proxy process, chosen by measurement (docs/performance.md).</summary>
internal static partial class NativeMemory
{
    // glibc malloc.h: M_ARENA_MAX. Each thread that calls malloc may get an arena of its own (up to 8 per core), and
    // OpenSSL allocates per-connection TLS state from whichever thread-pool thread runs the handshake, so freed memory
    // ends up spread over many arenas that each keep their own slack.
    private const int MallocArenaMaxParameter = -8;

    // Two arenas: https-1k-c64 peak RSS 46-47 MiB against 49-51 MiB with glibc's default, with no loss of throughput
    // measured (two threads can still allocate at once; the proxy has about one busy thread per core).
    private const int MallocArenas = 2;

    /// <summary>Caps glibc's malloc arenas; does nothing where the C library is not glibc or the OS is not Linux.</summary>
    public static void Configure()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            _ = MallOpt(MallocArenaMaxParameter, MallocArenas);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl, for one, has no arenas to cap): nothing to tune, and nothing is wrong.
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);
}
