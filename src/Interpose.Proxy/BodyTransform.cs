namespace Interpose.Proxy;

/// <summary>
/// Transforms a streamed body chunk by chunk. Called with each chunk as it arrives, and once more with an empty
/// chunk when the body ends so that the transform can flush what it held back.
/// </summary>
/// <param name="chunk">The bytes received; valid only during the call.</param>
/// <returns>The bytes to send in their place (may be empty, may be <paramref name="chunk"/> itself).</returns>
public delegate ReadOnlyMemory<byte> BodyTransform(ReadOnlyMemory<byte> chunk);
