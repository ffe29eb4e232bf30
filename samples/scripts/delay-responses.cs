// delay-responses.cs: responses for paths under /slow/ are held back 500 ms before they go to the client, to see
// how an application behaves on a slow backend. Change Delay or the prefix and save: the proxy reloads the script.
// Run:  interpose run -s samples/scripts/delay-responses.cs
public sealed class DelayResponses : ProxyAddon
{
    private static readonly TimeSpan Delay = TimeSpan.FromMilliseconds(500);

    private const string PathPrefix = "/slow/";

    public override async ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        if (exchange.Request.Path.StartsWith(PathPrefix, StringComparison.Ordinal))
        {
            // The token ends the wait when the client goes away or the proxy shuts down.
            await Task.Delay(Delay, cancellationToken);
            exchange.Response!.Headers.Set("X-Interpose-Delay", ((int)Delay.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture) + "ms");
        }
    }
}
