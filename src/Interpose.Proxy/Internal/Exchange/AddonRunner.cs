using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Interpose.Proxy.Internal;

/// <summary>
/// Runs one hook across the addons in order. An addon that throws is turned into an <see cref="AddonException"/>
/// naming it, which fails only the exchange at hand. Every call is bounded by <see cref="ProxyTimeouts.AddonHook"/>.
/// </summary>
/// <remarks>
/// <code>
///  token = scope.Prepare() ─► hook(token) ─► completed synchronously? done (no timer, no registration)
///    └─ pending ─► scope.Start(deadline, parent) ─► wait for the hook or the token, whichever is first
///         ├─ the hook ended            ─► its result (an exception: AddonException)
///         ├─ the deadline passed       ─► AddonException(TimeoutException); the hook is left to finish on its own
///         └─ the parent was cancelled  ─► OperationCanceledException, as before
/// </code>
/// NOTE: a hook that ignores its token is abandoned, not awaited: holding the exchange (and the client connection)
/// for it is what the bound exists to stop. It may still touch the exchange later; the exchange has failed by then.
/// </remarks>
internal sealed class AddonRunner(IReadOnlyList<ProxyAddon> addons, HookDeadlines? deadlines)
{
    /// <summary>No addons.</summary>
    public static AddonRunner Empty { get; } = new([], null);

    public bool IsEmpty => addons.Count == 0;

    /// <summary>The addons, in the order their hooks run.</summary>
    public IReadOnlyList<ProxyAddon> List => addons;

    /// <summary>Runs a hook on every addon; stops at the first that fails or does not complete in time.</summary>
    /// <remarks>The deadline runs on <c>scope</c>, the caller's own (the exchange pipeline keeps one), or a lent one when null.</remarks>
    /// <exception cref="AddonException">An addon threw, or did not complete within the hook timeout (its inner
    /// exception is then a <see cref="TimeoutException"/>).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public ValueTask RunAsync<TState>(string hook, TState state, Func<ProxyAddon, TState, CancellationToken, ValueTask> invoke, CancellationToken cancellationToken, TimeoutScope? scope = null) =>
        addons.Count == 0 ? default : RunAllAsync(hook, state, invoke, notificationLogger: null, scope, cancellationToken);

    /// <summary>
    /// Runs a notification hook (connect/disconnect, done): failures and timeouts are logged, never propagated, and
    /// the next addon is notified.
    /// </summary>
    /// <remarks>The deadline runs on <c>scope</c>, the caller's own (the exchange pipeline keeps one), or a lent one when null.</remarks>
    public ValueTask NotifyAsync<TState>(string hook, TState state, Func<ProxyAddon, TState, CancellationToken, ValueTask> invoke, ILogger logger, CancellationToken cancellationToken, TimeoutScope? scope = null) =>
        addons.Count == 0 ? default : RunAllAsync(hook, state, invoke, logger, scope, cancellationToken);

    /// <summary>Both of the above: with a <paramref name="notificationLogger"/>, failures are logged and skipped.</summary>
    private async ValueTask RunAllAsync<TState>(string hook, TState state, Func<ProxyAddon, TState, CancellationToken, ValueTask> invoke, ILogger? notificationLogger, TimeoutScope? scope, CancellationToken cancellationToken)
    {
        var lent = scope is null;
        scope ??= deadlines!.Rent();
        try
        {
            for (var i = 0; i < addons.Count; i++)
            {
                var addon = addons[i];
                try
                {
                    await CallAsync(addon, hook, state, invoke, scope, cancellationToken);
                }
                catch (OperationCanceledException) when (notificationLogger is not null && cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (AddonException ex) when (notificationLogger is not null && ex.TimedOut)
                {
                    deadlines!.NotificationTimedOut(addon.Name, hook);
                }
                catch (AddonException ex) when (notificationLogger is not null)
                {
                    ProxyLog.AddonHookFailed(notificationLogger, addon.Name, hook, ex.InnerException!);
                }
            }
        }
        finally
        {
            if (lent)
            {
                deadlines!.Return(scope);
            }
        }
    }

    /// <summary>One hook of one addon. Not async itself: a hook that completes synchronously costs a token reset only.</summary>
    /// <exception cref="AddonException">The hook threw or ran past the deadline.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    private ValueTask CallAsync<TState>(ProxyAddon addon, string hook, TState state, Func<ProxyAddon, TState, CancellationToken, ValueTask> invoke, TimeoutScope scope, CancellationToken cancellationToken)
    {
        ValueTask pending;
        try
        {
            pending = invoke(addon, state, scope.Prepare());
            if (pending.IsCompletedSuccessfully)
            {
                // Consumes a pooled ValueTask source, as an await would.
                pending.GetAwaiter().GetResult();
                return default;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            throw new AddonException(addon.Name, hook, ex);
        }

        return AwaitBoundedAsync(addon, hook, pending, scope, cancellationToken);
    }

    /// <summary>The slow path: the hook went asynchronous, so the deadline is armed now.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private async ValueTask AwaitBoundedAsync(ProxyAddon addon, string hook, ValueTask pending, TimeoutScope scope, CancellationToken cancellationToken)
    {
        scope.Start(deadlines!.Timeout, cancellationToken);
        var task = pending.AsTask();
        try
        {
            // The same token the hook got: cancelled at the deadline or with the parent, it ends this wait whether
            // or not the hook honours it.
            await task.WaitAsync(scope.Token);
        }
        catch (OperationCanceledException ex) when (scope.TimedOut)
        {
            Abandon(task);
            deadlines.TimedOut(addon.Name, hook);
            throw new AddonException(addon.Name, hook, new TimeoutException(string.Create(CultureInfo.InvariantCulture, $"did not complete within {deadlines.Timeout.TotalSeconds:0.###} s"), ex));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Abandon(task);
            throw;
        }
        catch (Exception ex)
        {
            throw new AddonException(addon.Name, hook, ex);
        }
        finally
        {
            scope.Disarm();
        }
    }

    /// <summary>A hook no longer waited for: whatever it ends with is observed, so it cannot surface as an unobserved task exception.</summary>
    private static void Abandon(Task task)
    {
        if (!task.IsCompleted)
        {
            _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }
}

/// <summary>An addon's hook threw or ran past its deadline; carries the addon's name for the log and the client's 502.</summary>
internal sealed class AddonException(string addon, string hook, Exception inner)
    : Exception($"addon {addon} failed in {hook}: {inner.Message}", inner)
{
    public string Addon { get; } = addon;

    public string Hook { get; } = hook;

    /// <summary>The hook did not complete within <see cref="ProxyTimeouts.AddonHook"/>; the proxy stopped waiting for it.</summary>
    public bool TimedOut => InnerException is TimeoutException;
}
