namespace Interpose.Proxy;

/// <summary>Why an exchange failed.</summary>
/// <param name="Phase">The step that failed.</param>
/// <param name="Message">A short human-readable reason, as sent to the client in a 502/504 body.</param>
/// <param name="IsTransient">True for failures that may go away on retry (timeouts, resets, refused); false for
/// permanent ones (bad certificate, protocol violation, DNS name not found).</param>
/// <param name="Exception">The underlying exception, if any.</param>
public sealed record ExchangeError(ExchangePhase Phase, string Message, bool IsTransient, Exception? Exception = null);
