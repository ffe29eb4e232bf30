namespace Interpose.Core.Flows;

/// <summary>A recorded HTTP response.</summary>
public sealed record FlowResponse : FlowMessage
{
    /// <summary>The status code.</summary>
    public required int StatusCode { get; init; }

    /// <summary>The reason phrase as received (empty for HTTP/2).</summary>
    public string Reason { get; init; } = "";
}
