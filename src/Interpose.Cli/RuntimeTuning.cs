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

    // Read by OpenSSL (getenv) when .NET first loads it: the file that configures its TLS defaults.
    private const string OpenSslConfigurationVariable = "OPENSSL_CONF";

    // Shipped beside the command (Interpose.Cli.csproj): the proxy's TLS policy as OpenSSL configuration.
    private const string OpenSslConfigurationFile = "interpose-openssl.cnf";

    /// <summary>
    /// The OpenSSL configuration file this process set, or null when it did not (the environment named one, the file
    /// is missing, or the C library is not glibc/musl): then the TLS policy must be set in code.
    /// </summary>
    public static string? OpenSslConfiguration { get; private set; }

    /// <summary>Applies the settings; call first thing in Main, before any socket exists and before any TLS use.</summary>
    public static void Apply()
    {
        // An explicit setting in the environment (for instance "0", to compare) wins.
        if (Environment.GetEnvironmentVariable(InlineSocketCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
        }

        // The other two talk to the C library and OpenSSL of a Linux process.
        if (OperatingSystem.IsLinux())
        {
            _ = CallLibc(static () => MallOpt(MallocArenaMaxParameter, MallocArenas));
            ConfigureOpenSsl();
        }
    }

    /// <summary>
    /// Points OpenSSL at the shipped configuration, which holds the proxy's cipher suites, so that the proxy need not
    /// set them in code: .NET then shares one OpenSSL context between connections instead of building one per
    /// connection (https-1k-c64 peak RSS 42 / 42 MiB against 45 / 44 in an experiment; docs/performance.md).
    /// </summary>
    private static void ConfigureOpenSsl()
    {
        // A configuration the user chose is theirs to keep; then the policy is set in code as in the library.
        if (Environment.GetEnvironmentVariable(OpenSslConfigurationVariable) is not null)
        {
            return;
        }

        var path = Path.Combine(AppContext.BaseDirectory, OpenSslConfigurationFile);

        // Natively: Environment.SetEnvironmentVariable changes only .NET's own copy, which OpenSSL never reads.
        if (File.Exists(path) && CallLibc(() => SetEnv(OpenSslConfigurationVariable, path, overwrite: 1)) == 0)
        {
            OpenSslConfiguration = path;
        }
    }

    /// <summary>Calls the C library; -1 when it has no such function (the setting is then simply not applied).</summary>
    private static int CallLibc(Func<int> call)
    {
        try
        {
            return call();
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no arenas to cap) or no C library by that name: nothing to tune, nothing wrong. The
            // TLS policy then stays in code, which is as safe, only less shared.
            return -1;
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
