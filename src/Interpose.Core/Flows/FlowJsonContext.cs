using System.Text.Json.Serialization;

namespace Interpose.Core.Flows;

/// <summary>Source-generated JSON metadata for flows (no reflection: the command is compiled ahead of time).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(Flow))]
internal sealed partial class FlowJsonContext : JsonSerializerContext;
