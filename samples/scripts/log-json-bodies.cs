// log-json-bodies.cs: JSON request and response bodies, one line per exchange on standard output:
//   {"method":"POST","url":"https://api.example.com/items","status":201,"request":{...},"response":{...}}
// Only JSON bodies are held in memory (to read them); every other body streams through as usual.
// Run:  interpose run -q -s samples/scripts/log-json-bodies.cs > bodies.jsonl
using System.Text.Json;
using System.Text.Json.Nodes;

public sealed class LogJsonBodies : ProxyAddon
{
    private readonly SemaphoreSlim _writing = new(1, 1);

    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        exchange.Request.BufferBody = IsJson(exchange.Request);
        return ValueTask.CompletedTask;
    }

    public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        exchange.Response!.BufferBody = IsJson(exchange.Response);
        return ValueTask.CompletedTask;
    }

    public override async ValueTask ResponseAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        var request = exchange.Request;
        var response = exchange.Response!;
        var requestJson = Parse(request);
        var responseJson = Parse(response);
        if (requestJson is null && responseJson is null)
        {
            return;
        }

        var line = new JsonObject
        {
            ["method"] = request.Method,
            ["url"] = request.Url.ToString(),
            ["status"] = response.StatusCode,
            ["request"] = requestJson,
            ["response"] = responseJson,
        }.ToJsonString();

        // Exchanges run concurrently: one line at a time.
        await _writing.WaitAsync(cancellationToken);
        try
        {
            await Console.Out.WriteLineAsync(line.AsMemory(), cancellationToken);
            await Console.Out.FlushAsync(cancellationToken);
        }
        finally
        {
            _writing.Release();
        }
    }

    private static bool IsJson(HttpMessage message) =>
        message.Headers.Get("Content-Type") is { } type && type.Split(';')[0].Trim().EndsWith("json", StringComparison.OrdinalIgnoreCase);

    private static JsonNode? Parse(HttpMessage message)
    {
        if (!IsJson(message) || !message.HasBody || message.Body.IsEmpty)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(message.Body.Span);
        }
        catch (JsonException)
        {
            return JsonValue.Create("(not JSON: " + message.Body.Length + " bytes)");
        }
    }
}
