using System.Buffers;
using System.Text.Json;

namespace Interpose.Core.Flows;

/// <summary>
/// Flows as JSON, one object per flow (the JSON Lines format of <c>-w FILE</c>): camelCase names, a <c>type</c>
/// discriminator (<c>http</c>, <c>tunnel</c>), header fields as <c>[name, value]</c> pairs, body bytes in base64.
/// </summary>
public static class FlowJson
{
    /// <summary>Writes <paramref name="flow"/> as one compact JSON object (no newline).</summary>
    /// <param name="writer">Where to write.</param>
    /// <param name="flow">The flow.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static void Write(Utf8JsonWriter writer, Flow flow)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(flow);
        FlowJsonWriter.Write(writer, flow);
    }

    /// <summary>Writes <paramref name="flow"/> as one line of JSON Lines (the object and a <c>\n</c>).</summary>
    /// <param name="output">Where to write.</param>
    /// <param name="flow">The flow.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static void WriteLine(IBufferWriter<byte> output, Flow flow)
    {
        ArgumentNullException.ThrowIfNull(output);
        using (var writer = new Utf8JsonWriter(output))
        {
            Write(writer, flow);
        }

        output.Write("\n"u8);
    }

    /// <summary>Reads one flow from a JSON object (one line of a JSON Lines file, without its newline).</summary>
    /// <param name="utf8Json">The JSON.</param>
    /// <returns>The flow.</returns>
    /// <exception cref="JsonException">The text is not a flow: not JSON, an unknown <c>type</c>, or a required member
    /// missing; the message gives the path.</exception>
    public static Flow Read(ReadOnlySpan<byte> utf8Json) =>
        JsonSerializer.Deserialize(utf8Json, FlowJsonContext.Default.Flow) ?? throw new JsonException("a flow cannot be null");
}
