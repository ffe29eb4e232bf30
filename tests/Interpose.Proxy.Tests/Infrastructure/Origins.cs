using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Interpose.Proxy.Tests.Infrastructure;

/// <summary>The routes most tests need, on a Kestrel origin.</summary>
public static class Origins
{
    public static void MapBasics(WebApplication app)
    {
        app.MapGet("/hello", () => "hello from origin");
        app.MapMethods("/echo", ["POST", "PUT", "PATCH"], async (HttpContext context) =>
        {
            context.Response.Headers["X-Method"] = context.Request.Method;
            context.Response.Headers["X-Request-Protocol"] = context.Request.Protocol;
            context.Response.Headers["X-Request-Chunked"] = context.Request.Headers.TransferEncoding.ToString();
            await context.Request.Body.CopyToAsync(context.Response.Body);
        });
        app.MapGet("/headers", (HttpContext context) =>
        {
            var text = new StringBuilder();
            foreach (var header in context.Request.Headers)
            {
                text.Append(header.Key).Append(": ").Append(header.Value.ToString()).Append('\n');
            }

            return text.ToString();
        });
    }

    public static Task<KestrelOrigin> StartPlainAsync() => KestrelOrigin.StartAsync(MapBasics);

    public static Task<KestrelOrigin> StartTlsAsync() =>
        KestrelOrigin.StartAsync(MapBasics, TestPki.Issue(TestPki.OriginRoot, "localhost"));
}

/// <summary>An addon that counts connections, for reuse assertions.</summary>
public sealed class ConnectionCounter : ProxyAddon
{
    private int _clients;
    private int _servers;

    public int ClientConnections => Volatile.Read(ref _clients);

    public int ServerConnections => Volatile.Read(ref _servers);

    public override ValueTask ClientConnectedAsync(ClientConnection client, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _clients);
        return default;
    }

    public override ValueTask ServerConnectedAsync(ServerConnection server, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _servers);
        return default;
    }
}
