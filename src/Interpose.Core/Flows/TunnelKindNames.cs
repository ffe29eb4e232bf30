namespace Interpose.Core.Flows;

/// <summary>The names of <see cref="TunnelKind"/> that the flow list, the web UI and the docs use.</summary>
public static class TunnelKindNames
{
    /// <summary>The kind's name: <c>tls-passthrough</c>, <c>raw</c> or <c>upgraded</c>.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns>Its name.</returns>
    public static string Name(this TunnelKind kind) => kind switch
    {
        TunnelKind.TlsPassthrough => "tls-passthrough",
        TunnelKind.Raw => "raw",
        _ => "upgraded",
    };
}
