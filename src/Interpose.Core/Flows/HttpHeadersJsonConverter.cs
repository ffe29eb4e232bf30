using System.Text.Json;
using System.Text.Json.Serialization;
using Interpose.Core.Http;

namespace Interpose.Core.Flows;

/// <summary>
/// Header fields as a JSON array of <c>[name, value]</c> pairs: order, spelling and duplicates survive, which an object
/// would lose. Reading does not re-validate names (a recorded field was valid on the wire; a flow file is trusted
/// input of this program, not of a peer).
/// </summary>
internal sealed class HttpHeadersJsonConverter : JsonConverter<HttpHeaders>
{
    public override HttpHeaders Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("header fields must be an array of [name, value] pairs");
        }

        var headers = new HttpHeaders();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartArray || !reader.Read() || reader.TokenType != JsonTokenType.String)
            {
                throw new JsonException("a header field must be a [name, value] pair of strings");
            }

            var name = reader.GetString()!;
            if (!reader.Read() || reader.TokenType != JsonTokenType.String)
            {
                throw new JsonException("a header field must be a [name, value] pair of strings");
            }

            var value = reader.GetString()!;
            if (!reader.Read() || reader.TokenType != JsonTokenType.EndArray)
            {
                throw new JsonException("a header field must be a [name, value] pair of strings");
            }

            headers.AddParsed(name, value);
        }

        return headers;
    }

    public override void Write(Utf8JsonWriter writer, HttpHeaders value, JsonSerializerOptions options) =>
        FlowJsonWriter.WriteHeaderPairs(writer, value);
}
