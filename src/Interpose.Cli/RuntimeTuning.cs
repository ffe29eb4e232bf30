using System.Runtime.InteropServices;

namespace Interpose.Cli;

/// <summary>
/// Process-wide runtime settings for the <c>interpose</c> command, each chosen by measurement (docs/performance.md).
/// They belong to the process, not the library: an application embedding Interpose chooses its own.
/// </summary>
internal static partial class RuntimeTuning
{
    // glibc malloc.h: M_ARENA_MAX. Each thread that calls malloc may get an arena of its own (up to 8 per core), and
    // OpenSSL allocates per-connection TLS state from whichever thread runs the handshake, so freed memory ends up
    // spread over many arenas that each keep their own slack.
    private const int MallocArenaMaxParameter = -8;

    // Two arenas: https-1k-c64 peak RSS 46-48 MiB against 49 MiB with glibc's default, throughput within noise.
    private const int MallocArenas = 2;

    // Read once by System.Net.Sockets when the first socket is used: "1" runs the continuation of a socket operation
    // on the thread that saw it complete (one such thread per core) instead of queueing it to the thread pool. The
    // proxy's continuations never block, and every exchange is a chain of socket operations: plain-1k-c64 proxy CPU
    // 0.074-0.085 -> 0.049-0.050 ms per request, https-1k-c64 0.098-0.112 -> 0.065-0.082 ms (two runs each).
    private const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Applies the settings; call first thing in Main, before any socket exists.</summary>
    public static void Apply()
    {
        // An explicit setting in the environment (for instance "0", to compare) wins.
        if (Environment.GetEnvironmentVariable(InlineSocketCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
        }

        CapMallocArenas();
    }

    /// <summary>Caps glibc's malloc arenas; does nothing where the C library is not glibc or the OS is not Linux.</summary>
    private static void CapMallocArenas()
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
