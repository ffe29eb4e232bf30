namespace Interpose.Core.Http;

/// <summary>One header (or trailer) field line: the name exactly as received or set, and its value with
/// surrounding whitespace removed.</summary>
/// <param name="Name">The field name, case preserved.</param>
/// <param name="Value">The field value without leading or trailing optional whitespace.</param>
public readonly record struct HttpHeader(string Name, string Value);
