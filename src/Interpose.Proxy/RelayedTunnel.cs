using System.Net;
using Interpose.Core.Flows;

namespace Interpose.Proxy;

/// <summary>
/// A tunnel the proxy relayed as bytes instead of intercepting it (TLS passed through, or bytes that were neither TLS
/// nor HTTP), as <see cref="ProxyAddon.TunnelClosedAsync"/> sees it once it ended: mitmproxy's <c>tcp_end</c>.
/// </summary>
public sealed class RelayedTunnel
{
    internal RelayedTunnel(ClientConnection client, TunnelKind kind, string host, int port, DateTimeOffset startedAt)
    {
        Client = client;
        Kind = kind;
        Host = host;
        Port = port;
        StartedAt = startedAt;
    }

    /// <summary>The client connection that asked for the tunnel.</summary>
    public ClientConnection Client { get; }

    /// <summary>How the bytes were relayed.</summary>
    public TunnelKind Kind { get; }

    /// <summary>The host the client asked to reach (the CONNECT authority's host).</summary>
    public string Host { get; }

    /// <summary>The port the client asked to reach.</summary>
    public int Port { get; }

    /// <summary>The server name of the client's ClientHello, for TLS passed through; else null.</summary>
    public string? Sni => Client.Sni;

    /// <summary>The address the proxy connected to; null when it could not connect.</summary>
    public EndPoint? ServerEndPoint { get; internal set; }

    /// <summary>The wall-clock time the CONNECT request arrived.</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>How long the tunnel took, from the CONNECT request to the end of both directions (or the failure).</summary>
    public TimeSpan Duration { get; internal set; }

    /// <summary>Bytes relayed from the client to the server.</summary>
    public long BytesFromClient { get; internal set; }

    /// <summary>Bytes relayed from the server to the client.</summary>
    public long BytesFromServer { get; internal set; }

    /// <summary>Why the tunnel failed: <see cref="ExchangePhase.Dns"/> or <see cref="ExchangePhase.Connect"/> when the
    /// server could not be reached, <see cref="ExchangePhase.Response"/> when a side reset the relay; null when both
    /// sides closed in order.</summary>
    public ExchangeError? Error { get; internal set; }
}
