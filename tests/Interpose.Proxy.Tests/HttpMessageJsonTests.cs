using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Interpose.Proxy.Tests;

/// <summary>The JSON helpers with source-generated metadata, the ones that work under trimming and native AOT.</summary>
public sealed class HttpMessageJsonTests
{
    [Fact]
    public void A_json_response_from_type_info_has_the_body_and_content_type_and_reads_back()
    {
        var item = new JsonItem("widget", 3);

        var response = HttpResponse.Json(201, item, JsonTestContext.Default.JsonItem);

        Assert.Equal(201, response.StatusCode);
        Assert.Equal("application/json", response.Headers.Get("Content-Type"));
        Assert.Equal("""{"Name":"widget","Count":3}""", Encoding.UTF8.GetString(response.Body.Span));
        Assert.Equal(item, response.ReadJson(JsonTestContext.Default.JsonItem));
    }

    [Fact]
    public void SetJson_from_type_info_replaces_the_body()
    {
        var response = HttpResponse.Text(200, "not json");

        response.SetJson(new JsonItem("gadget", 7), JsonTestContext.Default.JsonItem);

        Assert.Equal("""{"Name":"gadget","Count":7}""", Encoding.UTF8.GetString(response.Body.Span));
    }

    [Fact]
    public void Reading_json_that_does_not_fit_the_type_throws_JsonException()
    {
        var response = HttpResponse.Text(200, "[1, 2]", "application/json");

        Assert.Throws<JsonException>(() => response.ReadJson(JsonTestContext.Default.JsonItem));
    }
}

public sealed record JsonItem(string Name, int Count);

[JsonSerializable(typeof(JsonItem))]
internal sealed partial class JsonTestContext : JsonSerializerContext;
