using System.Security.Cryptography;
using System.Text;
using Interpose.Proxy;

namespace Interpose.Web;

/// <summary>
/// Marks a request the web UI replays as a replay: the UI's replayer sends it through the proxy's own listener with
/// <see cref="Header"/> (this marker's secret and the original flow's id); this addon, first among the proxy's addons,
/// removes the field and tags the exchange as <see cref="Interpose.Proxy.FlowReplayer"/> does, so the recorder stores mitmproxy's
/// <c>is_replay = "request"</c> (<c>~replayq</c>) and the list shows the replay marker.
/// </summary>
/// <remarks>The field never reaches an origin or another addon, whoever sends it; only one carrying the secret (which
/// never leaves the process) marks the exchange, so a client of the proxy cannot pass its requests off as replays.</remarks>
public sealed class WebReplayMarker : ProxyAddon
{
    /// <summary>The request field that carries "secret flow-id" from the UI's replayer to this addon.</summary>
    public const string Header = "X-Interpose-Web-Replay";

    /// <summary>Bytes of randomness in the secret: 128 bits, as hard to guess as a GUID.</summary>
    private const int SecretBytes = 16;

    private readonly byte[] _secret = Encoding.ASCII.GetBytes(Convert.ToHexString(RandomNumberGenerator.GetBytes(SecretBytes)));

    /// <inheritdoc/>
    public override string Name => "web-replay";

    /// <summary>The value of <see cref="Header"/> that marks a replay of <paramref name="original"/>.</summary>
    /// <param name="original">The id of the replayed flow.</param>
    /// <returns>The field value.</returns>
    internal string ValueFor(Guid original) => Encoding.ASCII.GetString(_secret) + " " + original.ToString("D");

    /// <inheritdoc/>
    /// <exception cref="ArgumentNullException"><paramref name="exchange"/> is null.</exception>
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        var headers = exchange.Request.Headers;
        if (headers.Get(Header) is not { } value)
        {
            return default;
        }

        headers.Remove(Header);
        var space = value.IndexOf(' ', StringComparison.Ordinal);
        if (space > 0
            && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(value[..space]), _secret)
            && Guid.TryParse(value.AsSpan(space + 1), out var original))
        {
            exchange.Tags[Interpose.Proxy.FlowReplayer.Tag] = original.ToString();
        }

        return default;
    }
}
