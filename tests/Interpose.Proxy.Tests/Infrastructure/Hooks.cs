namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>An addon made of delegates: a test sets the hooks it needs.</summary>
public sealed class Hooks : ProxyAddon
{
    public string DisplayName { get; init; } = "Hooks";

    public Action<HttpExchange>? OnRequestHeaders { get; init; }

    public Action<HttpExchange>? OnRequest { get; init; }

    public Action<HttpExchange>? OnResponseHeaders { get; init; }

    public Action<HttpExchange>? OnResponse { get; init; }

    public Action<TlsClientHelloContext>? OnClientHello { get; init; }

    public Action<HttpExchange>? OnDone { get; init; }

    public override string Name => DisplayName;

    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        OnRequestHeaders?.Invoke(exchange);
        return default;
    }

    public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        OnRequest?.Invoke(exchange);
        return default;
    }

    public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        OnResponseHeaders?.Invoke(exchange);
        return default;
    }

    public override ValueTask ResponseAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        OnResponse?.Invoke(exchange);
        return default;
    }

    public override ValueTask TlsClientHelloAsync(TlsClientHelloContext context, CancellationToken cancellationToken)
    {
        OnClientHello?.Invoke(context);
        return default;
    }

    public override ValueTask DoneAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        OnDone?.Invoke(exchange);
        return default;
    }
}
