using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Runs one hook across the addons in order. An addon that throws is turned into an <see cref="AddonException"/>
/// naming it, which fails only the exchange at hand.
/// </summary>
internal sealed class AddonRunner(IReadOnlyList<ProxyAddon> addons)
{
    /// <summary>No addons.</summary>
    public static AddonRunner Empty { get; } = new([]);

    public bool IsEmpty => addons.Count == 0;

    /// <summary>The addons, in the order their hooks run.</summary>
    public IReadOnlyList<ProxyAddon> List => addons;

    /// <summary>Runs a hook on every addon; stops at the first that fails.</summary>
    /// <exception cref="AddonException">An addon threw.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async ValueTask RunAsync<TState>(string hook, TState state, Func<ProxyAddon, TState, CancellationToken, ValueTask> invoke, CancellationToken cancellationToken)
    {
        for (var i = 0; i < addons.Count; i++)
        {
            var addon = addons[i];
            try
            {
                await invoke(addon, state, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                throw new AddonException(addon.Name, hook, ex);
            }
        }
    }

    /// <summary>Runs a notification hook (connect/disconnect, done): failures are logged, never propagated.</summary>
    public async ValueTask NotifyAsync<TState>(string hook, TState state, Func<ProxyAddon, TState, CancellationToken, ValueTask> invoke, ILogger logger, CancellationToken cancellationToken)
    {
        for (var i = 0; i < addons.Count; i++)
        {
            var addon = addons[i];
            try
            {
                await invoke(addon, state, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                ProxyLog.AddonHookFailed(logger, addon.Name, hook, ex);
            }
        }
    }
}

/// <summary>An addon's hook threw; carries the addon's name for the log and the client's 502.</summary>
internal sealed class AddonException(string addon, string hook, Exception inner)
    : Exception($"addon {addon} failed in {hook}: {inner.Message}", inner)
{
    public string Addon { get; } = addon;

    public string Hook { get; } = hook;
}
