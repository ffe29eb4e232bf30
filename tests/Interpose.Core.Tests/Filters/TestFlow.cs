using System.Text;
using Interpose.Core.Filters;
using Interpose.Core.Http;

namespace Interpose.Core.Tests.Filters;

/// <summary>A flow for filter tests: plain settable values, as a store row or the proxy would expose them.</summary>
internal sealed record TestFlow : IFilterableFlow
{
    public FilterFlowKind Kind { get; init; } = FilterFlowKind.Http;
    public string? Method { get; init; }
    public string? Url { get; init; }
    public string? Host { get; init; }
    public HttpHeaders? RequestHeaders { get; init; }
    public HttpHeaders? ResponseHeaders { get; init; }
    public ReadOnlyMemory<byte> RequestBody { get; init; }
    public ReadOnlyMemory<byte> ResponseBody { get; init; }
    public bool HasResponse => StatusCode is not null || DnsResponse;
    public bool DnsResponse { get; init; }
    public int? StatusCode { get; init; }
    public IReadOnlyList<FilterMessage> Messages { get; init; } = [];
    public bool IsWebSocket { get; init; }
    public bool HasError { get; init; }
    public string? ClientAddress { get; init; }
    public string? ServerAddress { get; init; }
    public string? Marker { get; init; }
    public string? Comment { get; init; }
    public FilterReplayKind Replay { get; init; }

    public static HttpHeaders Headers(params string[] lines)
    {
        var h = new HttpHeaders();
        foreach (var line in lines)
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            h.Add(line[..colon], line[(colon + 1)..].Trim());
        }

        return h;
    }

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>The flows every table refers to by name.</summary>
    public static IReadOnlyDictionary<string, TestFlow> All { get; } = new Dictionary<string, TestFlow>
    {
        ["get"] = new()
        {
            Method = "GET",
            Url = "http://example.com/index.html?q=1",
            Host = "example.com",
            RequestHeaders = Headers("Host: example.com", "User-Agent: curl/8.5", "Accept: */*"),
            StatusCode = 200,
            ResponseHeaders = Headers("Content-Type: text/html; charset=utf-8", "Server: nginx"),
            ResponseBody = Utf8("<html>Hello World</html>"),
            ClientAddress = "127.0.0.1:5000",
            ServerAddress = "93.184.216.34:80",
        },
        ["post"] = new()
        {
            Method = "POST",
            Url = "https://api.example.org:8443/v1/items",
            Host = "api.example.org",
            RequestHeaders = Headers("Host: api.example.org:8443", "Content-Type: application/json", "X-Token: s3cr3t"),
            RequestBody = Utf8("{\"name\":\"café\"}"),
            StatusCode = 201,
            ResponseHeaders = Headers("Content-Type: application/json", "Location: /v1/items/7"),
            ResponseBody = Utf8("{\"id\":7}"),
            ClientAddress = "::1:6000",
            ServerAddress = "api.example.org:8443",
            Marker = ":default:",
            Comment = "check this\nsecond line",
        },
        ["pending"] = new()
        {
            Method = "get",
            Url = "http://Example.COM/Pending",
            Host = "Example.COM",
            RequestHeaders = Headers("Host: Example.COM"),
            ClientAddress = "127.0.0.1:5001",
        },
        ["error"] = new()
        {
            Method = "GET",
            Url = "http://down.test/",
            Host = "down.test",
            RequestHeaders = Headers("Host: down.test"),
            HasError = true,
            ClientAddress = "127.0.0.1:5002",
            ServerAddress = "down.test:80",
        },
        ["js"] = new()
        {
            Method = "GET",
            Url = "http://cdn.test/app.js",
            Host = "cdn.test",
            RequestHeaders = Headers("Host: cdn.test"),
            StatusCode = 200,
            ResponseHeaders = Headers("Content-Type: application/javascript"),
            ResponseBody = Utf8("console.log(1)"),
        },
        ["uppercss"] = new()
        {
            Method = "GET",
            Url = "http://cdn.test/site.css",
            Host = "cdn.test",
            RequestHeaders = Headers("Host: cdn.test"),
            StatusCode = 404,
            ResponseHeaders = Headers("Content-Type: Text/CSS"),
        },
        ["ws"] = new()
        {
            Method = "GET",
            Url = "http://chat.test/socket",
            Host = "chat.test",
            RequestHeaders = Headers("Host: chat.test", "Upgrade: websocket"),
            StatusCode = 101,
            ResponseHeaders = Headers("Upgrade: websocket"),
            IsWebSocket = true,
            Messages = [new(true, Utf8("hello")), new(false, Utf8("welcome"))],
        },
        ["tcp"] = new()
        {
            Kind = FilterFlowKind.Tcp,
            Messages = [new(true, Utf8("PING")), new(false, Utf8("PONG"))],
            ClientAddress = "10.1.1.1:7000",
            ServerAddress = "db.internal:5432",
        },
        ["replayed"] = new()
        {
            Method = "DELETE",
            Url = "http://example.com/items/7",
            Host = "example.com",
            RequestHeaders = Headers("Host: example.com"),
            StatusCode = 404,
            ResponseHeaders = Headers("Content-Length: 0"),
            Replay = FilterReplayKind.Request,
        },
        ["proxied"] = new()
        {
            // An absolute-form request to an IP whose Host header names a virtual host: ~d sees both.
            Method = "PUT",
            Url = "http://virtual.test:8080/upload",
            Host = "10.0.0.1",
            RequestHeaders = Headers("Host: virtual.test:8080"),
            StatusCode = 204,
            ResponseHeaders = Headers(),
            Replay = FilterReplayKind.Response,
        },
        ["kelvin"] = new()
        {
            // K (U+212A KELVIN SIGN) matches a case-insensitive "k" in .NET but not in SQLite's LIKE.
            Method = "GET",
            Url = "http://example.com/\u212Aelvin/\u017Fign",
            Host = "example.com",
            RequestHeaders = Headers("Host: example.com"),
        },
    };
}
