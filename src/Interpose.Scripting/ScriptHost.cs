using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Interpose.Proxy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Interpose.Scripting;

/// <summary>
/// C# scripts as addons: each file defines one or more <see cref="ProxyAddon"/> subclasses, compiled with Roslyn
/// against the running framework and Interpose, loaded into a collectible load context, and compiled again when the
/// file is saved. A reload that compiles replaces that script's addons for new exchanges (running ones finish with the
/// old ones); one that does not is logged with file, line and column, and the previous version keeps running.
/// </summary>
/// <remarks>
/// <code>
///  FileSystemWatcher ─► channel of changed scripts ─► one reload loop: debounce ─► read ─► same hash? skip
///    ─► compile + load ─► (errors: log, keep the old) ─► swap this script's addons ─► apply(all addons) ─► unload old
/// </code>
/// Needs the JIT (Roslyn emits IL, the load context loads it): the natively compiled command runs its JIT build for
/// scripts (docs/architecture.md#scripts).
/// </remarks>
public sealed class ScriptHost : IAsyncDisposable
{
    /// <summary>
    /// How long a script must stay unchanged after a change before it is compiled: editors save in several writes
    /// (truncate, write, rename), and dotnet watch waits about as long for the same reason.
    /// </summary>
    public static readonly TimeSpan ReloadDebounce = TimeSpan.FromMilliseconds(200);

    private readonly Script[] _scripts;
    private readonly ILogger _logger;
    private readonly Channel<int> _changes = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private Task? _reloads;

    /// <summary>Creates a host for the given script files; nothing is read until <see cref="Load"/>.</summary>
    /// <param name="paths">The scripts, in the order their addons run.</param>
    /// <param name="loggerFactory">Where loads and reload errors are logged; none when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="paths"/> is null.</exception>
    public ScriptHost(IEnumerable<string> paths, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        _scripts = [.. paths.Select(p => new Script(p, Path.GetFullPath(p)))];
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Interpose.Scripting");
    }

    /// <summary>The addons of every script's current version, in script order.</summary>
    public IReadOnlyList<ProxyAddon> Addons => [.. _scripts.SelectMany(s => s.Current?.Addons ?? [])];

    /// <summary>Reads, compiles and loads every script.</summary>
    /// <exception cref="ScriptCompilationException">A script does not compile or defines no addon; the errors name file, line and column.</exception>
    /// <exception cref="IOException">A script cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">A script cannot be read.</exception>
    public void Load()
    {
        foreach (var script in _scripts)
        {
            var text = File.ReadAllText(script.FullPath);
            var started = Stopwatch.GetTimestamp();
            script.Current = ScriptCompiler.Load(script.Path, text);
            script.Hash = Hash(text);
            if (_logger.IsEnabled(LogLevel.Information))
            {
                var names = Names(script.Current);
                var milliseconds = (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                ScriptLog.Loaded(_logger, script.Path, names, milliseconds);
            }
        }
    }

    /// <summary>
    /// Watches the scripts: each successful reload calls <paramref name="apply"/> with every script's addons (in
    /// script order), for example <c>addons =&gt; server.ReplaceAddons([.. before, .. addons])</c>.
    /// </summary>
    /// <param name="apply">Installs a new list; called from the reload loop, one call at a time.</param>
    /// <exception cref="ArgumentNullException"><paramref name="apply"/> is null.</exception>
    /// <exception cref="InvalidOperationException">Already watching.</exception>
    public void Watch(Action<IReadOnlyList<ProxyAddon>> apply)
    {
        ArgumentNullException.ThrowIfNull(apply);
        if (_reloads is not null)
        {
            throw new InvalidOperationException("The scripts are already watched.");
        }

        for (var i = 0; i < _scripts.Length; i++)
        {
            var index = i;
            var script = _scripts[i];
            var watcher = new FileSystemWatcher(Path.GetDirectoryName(script.FullPath)!, Path.GetFileName(script.FullPath))
            {
                NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
            };

            // Editors that save by writing a new file and renaming it over the old one raise Renamed or Created.
            FileSystemEventHandler changed = (_, _) => _changes.Writer.TryWrite(index);
            watcher.Changed += changed;
            watcher.Created += changed;
            watcher.Renamed += (_, _) => _changes.Writer.TryWrite(index);
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
        }

        _reloads = ReloadLoopAsync(apply, _stop.Token);
    }

    /// <summary>Stops watching; the loaded addons stay usable.</summary>
    /// <returns>A task that completes when the reload loop has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        foreach (var watcher in _watchers)
        {
            watcher.Dispose();
        }

        _changes.Writer.TryComplete();
        await _stop.CancelAsync();
        if (_reloads is not null)
        {
            await _reloads.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stop.Dispose();
    }

    private static string Names(LoadedScript loaded) => string.Join(", ", loaded.Addons.Select(a => a.Name));

    private static byte[] Hash(string text) => SHA256.HashData(Encoding.UTF8.GetBytes(text));

    private async Task ReloadLoopAsync(Action<IReadOnlyList<ProxyAddon>> apply, CancellationToken cancellationToken)
    {
        var pending = new HashSet<int>();
        var reader = _changes.Reader;
        while (await reader.WaitToReadAsync(cancellationToken))
        {
            // Debounce: collect changes until none arrived for ReloadDebounce.
            do
            {
                while (reader.TryRead(out var index))
                {
                    pending.Add(index);
                }

                await Task.Delay(ReloadDebounce, cancellationToken);
            }
            while (reader.TryRead(out var more) && pending.Add(more) | true);

            try
            {
                ReloadPending(pending, apply);
            }
            catch (Exception ex)
            {
                // Compile errors and unreadable files are handled per script; this is anything else (the embedder's
                // apply, a type initializer in a loaded script). The loop goes on: a dead one would stop every later
                // reload without a word.
                ScriptLog.ReloadCrashed(_logger, ex);
            }
            finally
            {
                pending.Clear();
            }
        }
    }

    private void ReloadPending(HashSet<int> pending, Action<IReadOnlyList<ProxyAddon>> apply)
    {
        var reloaded = new List<(Script Script, long Milliseconds)>();
        foreach (var index in pending.Order())
        {
            Reload(_scripts[index], reloaded);
        }

        if (reloaded.Count > 0)
        {
            apply(Addons);

            // Logged once the new addons are in place: whoever reads "reloaded" gets them on the next exchange.
            if (_logger.IsEnabled(LogLevel.Information))
            {
                foreach (var (script, milliseconds) in reloaded)
                {
                    var names = script.Current is { } current ? Names(current) : string.Empty;
                    ScriptLog.Reloaded(_logger, script.Path, names, milliseconds);
                }
            }
        }
    }

    /// <summary>Compiles a changed script; adds it to <paramref name="reloaded"/> when its addons were replaced.</summary>
    private void Reload(Script script, List<(Script Script, long Milliseconds)> reloaded)
    {
        string text;
        try
        {
            text = File.ReadAllText(script.FullPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            ScriptLog.Unreadable(_logger, script.Path, ex.Message);
            return;
        }

        var hash = Hash(text);
        if (script.Hash is { } previous && previous.AsSpan().SequenceEqual(hash))
        {
            ScriptLog.Unchanged(_logger, script.Path);
            return;
        }

        var started = Stopwatch.GetTimestamp();
        LoadedScript loaded;
        try
        {
            loaded = ScriptCompiler.Load(script.Path, text);
        }
        catch (ScriptCompilationException ex)
        {
            ScriptLog.ReloadFailed(_logger, script.Path, string.Join(Environment.NewLine, ex.Errors));
            return;
        }

        // The running version's hash, set only once it compiled: a save that brings back the running text after a
        // failed one (or after a half-written file the watcher read, as when an editor truncates before it writes) is
        // then no change, not a recompilation.
        var old = script.Current;
        script.Current = loaded;
        script.Hash = hash;

        // Exchanges still running hold the old addons: the context is collected once the last of them is done.
        old?.Context.Unload();
        reloaded.Add((script, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds));
    }

    /// <summary>One script file and its current version.</summary>
    private sealed class Script(string path, string fullPath)
    {
        public string Path { get; } = path;

        public string FullPath { get; } = fullPath;

        public LoadedScript? Current { get; set; }

        /// <summary>The SHA-256 of <see cref="Current"/>'s text.</summary>
        public byte[]? Hash { get; set; }
    }
}
