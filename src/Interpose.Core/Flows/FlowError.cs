namespace Interpose.Core.Flows;

/// <summary>Why a flow failed.</summary>
/// <param name="Phase">The step that failed, in lower case (<c>dns</c>, <c>connect</c>, <c>tls</c>, <c>request</c>,
/// <c>response</c>, <c>client_request</c>, <c>client_response</c>, <c>addon</c>).</param>
/// <param name="Message">A short human-readable reason.</param>
/// <param name="IsTransient">True for failures that may go away on retry (timeouts, resets, refused).</param>
public sealed record FlowError(string Phase, string Message, bool IsTransient);
