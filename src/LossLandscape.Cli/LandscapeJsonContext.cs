using System.Text.Json;
using System.Text.Json.Serialization;
using LossLandscape.Cli.Commands;

namespace LossLandscape.Cli;

/// <summary>
/// The source-generated serialisation metadata of every command's result record: camelCase names,
/// indented, and non-finite numbers written as <c>null</c> (<see cref="FiniteDoubleConverter"/>,
/// <see cref="NullableFiniteDoubleConverter"/>), since JSON has no NaN or ±∞.
/// </summary>
/// <remarks>
/// A command that writes <c>--json</c> adds its result record here with one <c>[JsonSerializable]</c> line and
/// returns <c>LandscapeJsonContext.Default.ItsRecord</c> from <see cref="LandscapeCommand{TSettings, TResult}.JsonType"/>.
/// Source generation keeps the CLI free of reflection-based serialisation (trimming- and AOT-safe) and makes a
/// record the compiler cannot serialise a build error rather than a run-time one.
/// </remarks>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    WriteIndented = true,
    Converters = [typeof(FiniteDoubleConverter), typeof(NullableFiniteDoubleConverter)])]
[JsonSerializable(typeof(InfoOutput))]
[JsonSerializable(typeof(EvaluateOutput))]
[JsonSerializable(typeof(ConstructOutput))]
[JsonSerializable(typeof(WalkOutput))]
[JsonSerializable(typeof(ConnectOutput))]
[JsonSerializable(typeof(PermuteOutput))]
[JsonSerializable(typeof(SliceOutput))]
[JsonSerializable(typeof(VerifyOutput))]
[JsonSerializable(typeof(TrainOutput))]
[JsonSerializable(typeof(SpectrumOutput))]
[JsonSerializable(typeof(TraceOutput))]
[JsonSerializable(typeof(CertificateOutput))]
[JsonSerializable(typeof(TrainedSpectraOutput))]
internal sealed partial class LandscapeJsonContext : JsonSerializerContext;

/// <summary>
/// A <see cref="double"/> as a JSON number when it is finite and as <c>null</c> when it is NaN or ±∞ (JSON,
/// RFC 8259 §6, has no literal for them; System.Text.Json would throw). Reading <c>null</c> gives NaN.
/// </summary>
internal sealed class FiniteDoubleConverter : JsonConverter<double>
{
    /// <inheritdoc/>
    public override bool HandleNull => true;

    /// <inheritdoc/>
    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (double.IsFinite(value))
        {
            writer.WriteNumberValue(value);
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}

/// <summary>A <see cref="Nullable{Double}"/> as <see cref="FiniteDoubleConverter"/> writes a double; null stays null.</summary>
internal sealed class NullableFiniteDoubleConverter : JsonConverter<double?>
{
    /// <inheritdoc/>
    public override bool HandleNull => true;

    /// <inheritdoc/>
    public override double? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.Null ? null : reader.GetDouble();

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, double? value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (value is { } v && double.IsFinite(v))
        {
            writer.WriteNumberValue(v);
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}
