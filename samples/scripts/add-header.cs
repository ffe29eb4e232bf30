// add-header.cs: every response gets an X-Interpose-Script header (mitmproxy's examples/addons/http-add-header.py).
// Run:  interpose run -s samples/scripts/add-header.cs
// Edit the value and save: the proxy reloads the script and new responses carry the new value.
public sealed class AddHeader : ProxyAddon
{
    public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        exchange.Response!.Headers.Set("X-Interpose-Script", "add-header");
        return ValueTask.CompletedTask;
    }
}
