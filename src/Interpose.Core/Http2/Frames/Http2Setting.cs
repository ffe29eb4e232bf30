namespace Interpose.Core.Http2;

/// <summary>One SETTINGS entry (RFC 9113 §6.5.1): a 16-bit identifier and a 32-bit value.</summary>
/// <param name="Parameter">The identifier; may be one <see cref="SettingsParameter"/> does not name (ignored, §6.5.2).</param>
/// <param name="Value">The value.</param>
public readonly record struct Http2Setting(SettingsParameter Parameter, uint Value);
