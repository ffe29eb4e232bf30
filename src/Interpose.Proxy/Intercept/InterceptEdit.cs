namespace Interpose.Proxy.Intercept;

/// <summary>
/// Changes to apply to a paused exchange when it resumes (<see cref="InterceptAddon.Resume"/>). A null member leaves
/// that part as it is.
/// </summary>
public sealed record InterceptEdit
{
    /// <summary>The request method (request phase only).</summary>
    public string? Method { get; init; }

    /// <summary>The absolute http or https URL of the request (request phase only).</summary>
    public string? Url { get; init; }

    /// <summary>The response status code (response phase only).</summary>
    public int? StatusCode { get; init; }

    /// <summary>The whole header section, in order, replacing the paused message's.</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? Headers { get; init; }

    /// <summary>The whole body, replacing the paused message's.</summary>
    public ReadOnlyMemory<byte>? Body { get; init; }
}
