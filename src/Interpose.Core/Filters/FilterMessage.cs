namespace Interpose.Core.Filters;

/// <summary>One WebSocket, TCP or UDP message, as the body operators see it.</summary>
/// <param name="FromClient">Whether the client sent it (<c>~bq</c>) rather than the server (<c>~bs</c>).</param>
/// <param name="Content">The payload (may be a recorded prefix).</param>
public readonly record struct FilterMessage(bool FromClient, ReadOnlyMemory<byte> Content);
