using System.Text.Json;
using System.Text.Json.Serialization;
using LossLandscape.Cli.Commands;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Paths;

namespace LossLandscape.Cli;

/// <summary>
/// The source-generated serialisation metadata of every command's result record and the library's result records in
/// it: camelCase names, indented, non-finite numbers written as <c>null</c> (<see cref="FiniteDoubleConverter"/>,
/// <see cref="NullableFiniteDoubleConverter"/>), since JSON has no NaN or ±∞, the library's enums by their camelCase
/// names (<see cref="CamelCaseEnumConverter{TEnum}"/>, <see cref="SolverStatusText.ToJsonName"/>), a matrix as its rows
/// (<see cref="MatrixConverter"/>) and a permutation as its layers (<see cref="UnitPermutationConverter"/>).
/// </summary>
/// <remarks>
/// A command that writes <c>--json</c> adds its result record here with one <c>[JsonSerializable]</c> line and
/// returns <c>LandscapeJsonContext.Default.ItsRecord</c> from <see cref="LandscapeCommand{TSettings, TResult}.JsonType"/>.
/// The library records it holds are written as they are (<see cref="JsonOutput.Inline"/>); where a JSON name differs
/// from a property's camelCase, the library's record says so with <c>[JsonPropertyName]</c>, and what the JSON leaves out
/// it marks <c>[JsonIgnore]</c>. A null property is not written (a field that exists only sometimes, such as <c>cluster</c>);
/// one that is written as null says so with <c>[JsonIgnore(Condition = JsonIgnoreCondition.Never)]</c>. An enum the JSON holds
/// needs its <see cref="CamelCaseEnumConverter{TEnum}"/> in the list below (without one it would be written as a number).
/// Source generation keeps the CLI free of reflection-based serialisation (trimming- and AOT-safe) and makes a
/// record the compiler cannot serialise a build error rather than a run-time one.
/// </remarks>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(FiniteDoubleConverter), typeof(NullableFiniteDoubleConverter), typeof(MatrixConverter), typeof(UnitPermutationConverter),
        typeof(CamelCaseEnumConverter<SolverStatus>), typeof(CamelCaseEnumConverter<SpectrumMethod>), typeof(CamelCaseEnumConverter<SpectrumEnd>),
        typeof(CamelCaseEnumConverter<SliceDirection>), typeof(CamelCaseEnumConverter<ConnectMethod>)])]
[JsonSerializable(typeof(InfoOutput))]
[JsonSerializable(typeof(ExportOutput))]
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
[JsonSerializable(typeof(ApproxOutput))]
[JsonSerializable(typeof(CertificateOutput))]
[JsonSerializable(typeof(TrainedSpectraOutput))]
[JsonSerializable(typeof(double[][]))]
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

/// <summary>
/// An enum as its member's name in camelCase (<see cref="SolverStatus.StoppedWithoutConvergence"/> as
/// <c>"stoppedWithoutConvergence"</c>, the spelling of <see cref="SolverStatusText.ToJsonName"/>), or the name a member's
/// <see cref="JsonStringEnumMemberNameAttribute"/> gives.
/// </summary>
/// <typeparam name="TEnum">The enum.</typeparam>
internal sealed class CamelCaseEnumConverter<TEnum>() : JsonStringEnumConverter<TEnum>(JsonNamingPolicy.CamelCase)
    where TEnum : struct, Enum;

/// <summary>A matrix <c>M[i, j]</c> as its rows, an array of arrays of numbers (non-finite ones as <c>null</c>); written only.</summary>
internal sealed class MatrixConverter : JsonConverter<double[,]>
{
    /// <inheritdoc/>
    public override double[,] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => throw new NotSupportedException("a matrix is written, not read");

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, double[,] value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(value);
        var rows = Enumerable.Range(0, value.GetLength(0)).Select(i => Enumerable.Range(0, value.GetLength(1)).Select(j => value[i, j]).ToArray()).ToArray();
        JsonSerializer.Serialize(writer, rows, LandscapeJsonContext.Default.DoubleArrayArray);
    }
}

/// <summary>A <see cref="UnitPermutation"/> as its <see cref="UnitPermutation.Layers"/>: one array per permutable layer; written only.</summary>
internal sealed class UnitPermutationConverter : JsonConverter<UnitPermutation>
{
    /// <inheritdoc/>
    public override UnitPermutation Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => throw new NotSupportedException("a permutation is written, not read");

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, UnitPermutation value, JsonSerializerOptions options) =>
        JsonSerializer.Serialize(writer, value.Layers, LandscapeJsonContext.Default.IReadOnlyListInt32Array);
}
