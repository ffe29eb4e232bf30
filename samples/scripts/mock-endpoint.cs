// mock-endpoint.cs: GET /api/status on any host (plain or intercepted HTTPS) is answered by the proxy with canned
// JSON and the origin is never contacted; everything else passes through. Stubs a backend that is down.
// Run:  interpose run -s samples/scripts/mock-endpoint.cs
public sealed class MockStatus : ProxyAddon
{
    public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
    {
        var request = exchange.Request;
        var path = request.Path.Split('?', 2)[0];
        if (request.Method == "GET" && path == "/api/status")
        {
            // Answered before the body is read, so no origin connection is opened for it.
            var response = HttpResponse.Text(200, "{\"status\":\"ok\",\"mocked\":true}", "application/json");
            response.Headers.Add("X-Interpose-Mock", "status");
            exchange.Respond(response);
        }

        return ValueTask.CompletedTask;
    }
}
