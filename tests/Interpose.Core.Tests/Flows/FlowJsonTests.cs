using System.Buffers;
using System.Text;
using System.Text.Json;
using Interpose.Core.Filters;
using Interpose.Core.Flows;
using Interpose.Core.Http;

namespace Interpose.Core.Tests.Flows;

/// <summary>
/// The hand-written flow writer (FlowJsonWriter, behind <see cref="FlowJson.Write"/>) against the source-generated
/// serializer it replaced: the same bytes for every kind of flow, so files written before and after read the same, and
/// what it writes reads back as the flow.
/// </summary>
public sealed class FlowJsonTests
{
    private static readonly DateTimeOffset Start = new DateTimeOffset(2026, 12, 4, 11, 50, 1, 234, TimeSpan.FromHours(1)).AddTicks(5678);

    public static TheoryData<string> Flows() => [.. Samples().Keys];

    [Theory]
    [MemberData(nameof(Flows))]
    public void The_writer_writes_the_serializers_bytes_and_they_read_back_as_the_flow(string name)
    {
        var flow = Samples()[name];

        var written = Written(w => FlowJson.Write(w, flow));
        var serialized = Written(w => JsonSerializer.Serialize(w, flow, FlowJsonContext.Default.Flow));

        Assert.Equal(Encoding.UTF8.GetString(serialized), Encoding.UTF8.GetString(written));
        var read = FlowJson.Read(written);
        Assert.Equal(Encoding.UTF8.GetString(written), Encoding.UTF8.GetString(Written(w => FlowJson.Write(w, read))));
    }

    [Theory]
    [MemberData(nameof(Flows))]
    public void Without_bytes_the_writer_writes_the_flow_with_empty_bodies_and_certificate_chains(string name)
    {
        // What a store's JSON column holds (the bytes are stored apart): written from the flow itself, no stripped copy.
        var flow = Samples()[name];
        var stripped = flow is HttpFlow http
            ? http with
            {
                Request = http.Request with { Body = http.Request.Body.WithoutContent() },
                Response = http.Response is { } r ? r with { Body = r.Body.WithoutContent() } : null,
                ClientTls = http.ClientTls is { } c ? c with { CertificateChain = [] } : null,
                ServerTls = http.ServerTls is { } s ? s with { CertificateChain = [] } : null,
            }
            : flow;

        var written = Encoding.UTF8.GetString(Written(w => FlowJsonWriter.Write(w, flow, bytes: false)));

        Assert.Equal(Encoding.UTF8.GetString(Written(w => FlowJson.Write(w, stripped))), written);
        if (flow is HttpFlow { Response.Body.Content.IsEmpty: false } || flow is HttpFlow { ServerTls.CertificateChain.Count: > 0 })
        {
            Assert.NotEqual(Encoding.UTF8.GetString(Written(w => FlowJson.Write(w, flow))), written);
        }
    }

    [Fact]
    public void Every_public_property_of_the_flow_records_is_in_the_fully_populated_sample()
    {
        // A property added to a record must reach the writer: the full sample's JSON names every property the
        // serializer knows, so a new one fails the byte comparison above until the sample and the writer have it.
        var json = Encoding.UTF8.GetString(Written(w => FlowJson.Write(w, Samples()["full"])));
        foreach (var type in new[] { typeof(Flow), typeof(HttpFlow), typeof(FlowRequest), typeof(FlowResponse), typeof(FlowBody), typeof(FlowTimings), typeof(FlowTls), typeof(FlowEndpoint), typeof(FlowError), typeof(FlowWebSocket), typeof(FlowWebSocketMessage) })
        {
            foreach (var property in type.GetProperties(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public))
            {
                if (property.GetCustomAttributes(typeof(System.Text.Json.Serialization.JsonIgnoreAttribute), inherit: true).Length > 0 || property.Name == "EqualityContract")
                {
                    continue;
                }

                var camel = char.ToLowerInvariant(property.Name[0]) + property.Name[1..];
                Assert.Contains("\"" + camel + "\":", json, StringComparison.Ordinal);
            }
        }
    }

    private static byte[] Written(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static Dictionary<string, Flow> Samples()
    {
        var headers = new HttpHeaders();
        headers.Add("Host", "a.test");
        headers.Add("x-Quote", "say \"hi\" <b> & 'é' \u00ff tab\t");
        headers.Add("x-quote", "dup");

        // Every printable ASCII character and a few beyond, each in a value of its own: the raw pairs must match the
        // writer's escaping for each; and a field longer than the raw path's stack buffer.
        for (var c = 0x20; c <= 0xFF; c++)
        {
            if (c is < 0x7F or 0xA0 or 0xE9 or 0xFF)
            {
                headers.Add("x-char-" + c.ToString("x2", System.Globalization.CultureInfo.InvariantCulture), "a" + (char)c + "b");
            }
        }

        headers.Add("Cookie", new string('c', 600));
        var trailers = new HttpHeaders();
        trailers.Add("Grpc-Status", "0");
        var minimal = new HttpFlow
        {
            Id = Guid.Empty,
            StartedAt = DateTimeOffset.UnixEpoch,
            Request = new FlowRequest { Method = "GET", Scheme = "http", Host = "a", Port = 80, Path = "/", HttpVersion = "HTTP/1.1", Headers = new HttpHeaders() },
            ClientHttpVersion = "HTTP/1.1",
        };
        var full = new HttpFlow
        {
            Id = FlowId.New(Start),
            StartedAt = Start,
            Client = new FlowEndpoint("127.0.0.1", 50123),
            Server = new FlowEndpoint("::1", 443),
            Error = new FlowError("response", "origin reset the stream \"x\"", true),
            Tags = new Dictionary<string, string>(StringComparer.Ordinal) { ["rule"] = "block <ads>", ["é"] = "" },
            Marker = "⭐",
            Comment = "line one\nline two",
            Replay = FilterReplayKind.Response,
            Request = new FlowRequest
            {
                Method = "POST", Scheme = "https", Host = "a.test", Port = 8443, Path = "/x?q=1&r=<2>", HttpVersion = "HTTP/2.0",
                Headers = headers, Body = FlowBody.FromBytes(new byte[] { 0, 1, 2, 255 }), Trailers = trailers,
            },
            Response = new FlowResponse
            {
                StatusCode = 101, Reason = "", HttpVersion = "HTTP/1.1", Headers = headers,
                Body = new FlowBody(new byte[] { 65 }, 5_000_000_000, null), Trailers = new HttpHeaders(),
            },
            ClientHttpVersion = "HTTP/2.0",
            ServerHttpVersion = "HTTP/1.1",
            StreamId = 7,
            ClientConnectionId = "12",
            ServerConnectionId = "34",
            IsSynthetic = true,
            Timings = new FlowTimings(0.125, 1, 2.5, 3.3333333333333335, 1e-7, 12345.678),
            ClientTls = new FlowTls("Tls13", "TLS_AES_128_GCM_SHA256", "h2", "a.test"),
            ServerTls = new FlowTls(null, null, null, null) { CertificateChain = [[48, 130, 1], [48]] },
            WebSocket = new FlowWebSocket
            {
                Messages =
                [
                    new FlowWebSocketMessage(true, WebSocketOpcode.Text, 1.25, "hi"u8.ToArray(), 2),
                    new FlowWebSocketMessage(false, WebSocketOpcode.Binary, 2, ReadOnlyMemory<byte>.Empty, 70_000, IsCompressed: true),
                    new FlowWebSocketMessage(false, WebSocketOpcode.Ping, 3, ReadOnlyMemory<byte>.Empty, 0),
                    new FlowWebSocketMessage(true, WebSocketOpcode.Pong, 4, ReadOnlyMemory<byte>.Empty, 0),
                    new FlowWebSocketMessage(true, WebSocketOpcode.Close, 5, new byte[] { 3, 232 }, 2),
                    new FlowWebSocketMessage(true, (WebSocketOpcode)3, 6, ReadOnlyMemory<byte>.Empty, 0),
                ],
                DroppedMessages = 4,
                CloseCode = 1000,
                CloseReason = "bye",
                ClosedByClient = false,
                ParseError = "bad frame",
            },
        };
        return new Dictionary<string, Flow>(StringComparer.Ordinal)
        {
            ["minimal"] = minimal,
            ["full"] = full,
            ["unnamed enum values"] = full with { Replay = (FilterReplayKind)9 },
            ["unknown timings"] = full with { Timings = new FlowTimings(null, null, null, null, null, 1) },
            ["no response, closed by client"] = full with { Response = null, WebSocket = full.WebSocket with { ClosedByClient = true, Messages = [] } },
            ["tunnel"] = new TunnelFlow
            {
                Id = FlowId.New(Start), StartedAt = Start, Client = new FlowEndpoint("10.0.0.1", 1), Kind = TunnelKind.TlsPassthrough,
                Host = "p.test", Port = 443, Sni = "p.test", BytesFromClient = 1, BytesFromServer = long.MaxValue, DurationMs = 3.5,
            },
            ["bare tunnel"] = new TunnelFlow { Id = Guid.Empty, StartedAt = Start, Kind = (TunnelKind)7, Host = "", Port = 0 },
            ["raw tunnel"] = new TunnelFlow { Id = Guid.Empty, StartedAt = Start, Kind = TunnelKind.Raw, Host = "r", Port = 1 },
            ["upgraded tunnel"] = new TunnelFlow { Id = Guid.Empty, StartedAt = Start, Kind = TunnelKind.Upgraded, Host = "u", Port = 2, Replay = FilterReplayKind.Request },
        };
    }
}
