namespace Interpose.Core.Http;

/// <summary>The framing decision for one message body.</summary>
/// <param name="Kind">How the body is delimited.</param>
/// <param name="ContentLength">The body length when <paramref name="Kind"/> is <see cref="BodyKind.ContentLength"/>; otherwise 0.</param>
public readonly record struct BodyFraming(BodyKind Kind, long ContentLength)
{
    /// <summary>No body.</summary>
    public static BodyFraming None => new(BodyKind.None, 0);

    /// <summary>A chunked body.</summary>
    public static BodyFraming Chunked => new(BodyKind.Chunked, 0);

    /// <summary>A body delimited by connection close.</summary>
    public static BodyFraming CloseDelimited => new(BodyKind.CloseDelimited, 0);
}
