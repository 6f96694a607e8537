using LossLandscape.Engine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace LossLandscape.Cli;

/// <summary>
/// Writes a command's machine-readable result (<c>--json FILE</c>): the result record serialised by
/// System.Text.Json with the source-generated <see cref="LandscapeJsonContext"/> (camelCase names, indented,
/// non-finite numbers as <c>null</c>), written atomically (<see cref="AtomicFile"/>), or to standard output with
/// <c>--json -</c>.
/// </summary>
internal static class JsonOutput
{
    /// <summary>
    /// The writer's settings: indented, and the relaxed encoder so that the mathematical names in the
    /// values (ℓ, σ, β₁, ∇²L) stay readable instead of becoming \uXXXX escapes. The file is not embedded in
    /// HTML, which is what the default encoder's extra escaping protects against.
    /// </summary>
    private static readonly JsonWriterOptions WriterOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The <c>--json</c> argument that means standard output: <c>--json -</c>.</summary>
    public const string StandardOutput = "-";

    /// <summary>
    /// Serialises <paramref name="value"/> with <paramref name="type"/> (a property of
    /// <see cref="LandscapeJsonContext.Default"/>) to <paramref name="path"/>, if given; <see cref="StandardOutput"/>
    /// writes it to <paramref name="stdout"/> (the command's tables then went to standard error).
    /// </summary>
    public static void Write<T>(string? path, T value, JsonTypeInfo<T> type, TextWriter stdout)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(stdout);
        if (path is null)
        {
            return;
        }
        if (path == StandardOutput)
        {
            stdout.Write(Serialize(value, type));
            stdout.Flush();
            return;
        }
        AtomicFile.WriteAllText(path, Serialize(value, type));
    }

    /// <summary>The JSON text of <paramref name="value"/>, ending in a newline.</summary>
    public static string Serialize<T>(T value, JsonTypeInfo<T> type)
    {
        ArgumentNullException.ThrowIfNull(type);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            JsonSerializer.Serialize(writer, value, type);
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}
