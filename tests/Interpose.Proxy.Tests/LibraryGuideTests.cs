using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Interpose.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Interpose.Proxy.Tests;

/// <summary>
/// The code snippets of docs/library.md, copied here verbatim (as addon classes) so that the guide cannot drift
/// from the API: each compiles against the real library and is checked through a real proxy.
/// </summary>
public sealed class LibraryGuideTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Guide_head_edit_reroute_and_tags_work_as_documented()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Addons.Add(new HeadEditor());
            o.Addons.Add(new RerouteApi(origin.Port));
            o.Addons.Add(new TenantTagger());
        });
        using var client = proxy.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://api.example.com/headers");
        request.Headers.Add("X-Tenant", "t1");
        request.Headers.Add("Cookie", "session=secret");

        using var response = await client.SendAsync(request);
        var headers = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("User-Agent: interpose\n", headers, StringComparison.Ordinal);
        Assert.DoesNotContain("Cookie", headers, StringComparison.Ordinal);
        Assert.Contains("Host: api.example.com\n", headers, StringComparison.Ordinal);
        Assert.Equal("t1", response.Headers.GetValues("X-Tenant-Seen").Single());
    }

    [Fact]
    public async Task Guide_respond_json_body_edit_and_stream_transform_work_as_documented()
    {
        await using var origin = await KestrelOrigin.StartAsync(app =>
        {
            Origins.MapBasics(app);
            app.MapGet("/item", async (HttpContext context) =>
            {
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync("{\"id\":1}");
            });
        });
        await using var proxy = await TestProxy.StartAsync(output, o =>
        {
            o.Addons.Add(new StatusMock());
            o.Addons.Add(new JsonEditor());
            o.Addons.Add(new UpperCaser());
        });
        using var client = proxy.CreateClient();

        var status = await client.GetStringAsync(origin.Url("/api/status"));
        var item = await client.GetStringAsync(origin.Url("/item"));
        var hello = await client.GetStringAsync(origin.Url("/hello"));

        // ResponseAsync also sees the synthetic answer, whose body is always present: the JSON editor changed it too.
        Assert.Equal("""{"status":"ok","intercepted":true}""", status);
        Assert.Equal("""{"id":1,"intercepted":true}""", item);
        Assert.Equal("HELLO FROM ORIGIN", hello);
    }

    [Fact]
    public async Task Guide_tls_decision_passes_the_chosen_hosts_through()
    {
        await using var origin = await Origins.StartTlsAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new BankPassthrough()));
        string? issuer = null;
        using var client = new HttpClient(new SocketsHttpHandler
        {
            Proxy = new WebProxy(proxy.Url),
            SslOptions = new SslClientAuthenticationOptions
            {
                // The origin's certificate is for localhost: accept it here, the point is whose certificate arrives.
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    issuer = ((X509Certificate2)certificate!).Issuer;
                    return true;
                },
            },
        });

        var body = await client.GetStringAsync($"https://www.bank.example:{origin.Port}/hello");

        Assert.Equal("hello from origin", body);
        Assert.Equal("CN=Interpose Test Origin Root", issuer);
    }

    [Fact]
    public async Task Guide_an_addon_that_throws_fails_only_its_exchange_with_a_502_naming_it()
    {
        await using var origin = await Origins.StartPlainAsync();
        await using var proxy = await TestProxy.StartAsync(output, o => o.Addons.Add(new Thrower()));
        using var client = proxy.CreateClient();

        using var failed = await client.GetAsync(origin.Url("/hello?fail=1"));
        var ok = await client.GetStringAsync(origin.Url("/hello"));

        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        Assert.Contains("addon Thrower failed in RequestAsync", await failed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("hello from origin", ok);
    }

    // ---- The guide's snippets, verbatim inside their classes. ----
    private sealed class HeadEditor : ProxyAddon
    {
        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            exchange.Request.Headers.Set("User-Agent", "interpose");
            exchange.Request.Headers.Remove("Cookie");
            return ValueTask.CompletedTask;
        }
    }

    private sealed class RerouteApi(int localPort) : ProxyAddon
    {
        public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (exchange.Request.Host == "api.example.com")
            {
                exchange.Request.Scheme = "http";
                exchange.Request.Host = "localhost";
                exchange.Request.Port = localPort;
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class StatusMock : ProxyAddon
    {
        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (exchange.Request.Method == "GET" && exchange.Request.Path == "/api/status")
            {
                exchange.Respond(HttpResponse.Json(200, new { status = "ok" }));
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class JsonEditor : ProxyAddon
    {
        public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            exchange.Response!.BufferBody = exchange.Response.Headers.Get("Content-Type")?.StartsWith("application/json", StringComparison.Ordinal) == true;
            return ValueTask.CompletedTask;
        }

        public override ValueTask ResponseAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (exchange.Response!.HasBody && exchange.Response.Body.Length > 0)
            {
                var item = exchange.Response.ReadJson<Dictionary<string, object>>()!;
                item["intercepted"] = true;
                exchange.Response.SetJson(item);
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class UpperCaser : ProxyAddon
    {
        public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            // Only text: the guide's snippet transforms every body; here JSON is left to JsonEditor.
            if (exchange.Response!.Headers.Get("Content-Type")?.StartsWith("text/", StringComparison.Ordinal) != true)
            {
                return ValueTask.CompletedTask;
            }

            exchange.Response!.StreamTransform = chunk =>
                chunk.IsEmpty ? ReadOnlyMemory<byte>.Empty : Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(chunk.Span).ToUpperInvariant());
            return ValueTask.CompletedTask;
        }
    }

    private sealed class TenantTagger : ProxyAddon
    {
        public override ValueTask RequestHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            exchange.Tags["tenant"] = exchange.Request.Headers.Get("X-Tenant");
            return ValueTask.CompletedTask;
        }

        public override ValueTask ResponseHeadersAsync(HttpExchange exchange, CancellationToken cancellationToken)
        {
            if (exchange.Tags.TryGetValue("tenant", out var tenant) && tenant is string name)
            {
                exchange.Response!.Headers.Add("X-Tenant-Seen", name);
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class BankPassthrough : ProxyAddon
    {
        public override ValueTask TlsClientHelloAsync(TlsClientHelloContext context, CancellationToken cancellationToken)
        {
            if (context.ClientHello.ServerName?.EndsWith(".bank.example", StringComparison.OrdinalIgnoreCase) == true)
            {
                context.Decision = TlsDecision.Passthrough;
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class Thrower : ProxyAddon
    {
        public override ValueTask RequestAsync(HttpExchange exchange, CancellationToken cancellationToken) =>
            exchange.Request.Path.Contains("fail=1", StringComparison.Ordinal) ? throw new InvalidOperationException("boom") : ValueTask.CompletedTask;
    }
}
