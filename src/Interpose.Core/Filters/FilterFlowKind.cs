namespace Interpose.Core.Filters;

/// <summary>What kind of flow a filter is looking at (mitmproxy's flow classes).</summary>
public enum FilterFlowKind
{
    /// <summary>An HTTP exchange, including one that upgraded to a WebSocket.</summary>
    Http,

    /// <summary>A raw TCP relay (a tunnel that was not intercepted as HTTP).</summary>
    Tcp,

    /// <summary>A UDP flow.</summary>
    Udp,

    /// <summary>A DNS query and answer.</summary>
    Dns,
}
