using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Engine;

namespace LossLandscape.Cli;

/// <summary>
/// Writes a command's machine-readable result (<c>--json FILE</c>): the result record serialised by
/// System.Text.Json with the source-generated <see cref="LandscapeJsonContext"/> (camelCase names, indented,
/// non-finite numbers as <c>null</c>), written atomically (<see cref="AtomicFile"/>), or to standard output with
/// <c>--json -</c>.
/// </summary>
/// <remarks>
/// A command's result record is the library's result record and what only the CLI knows (the data source, the files
/// written, the cluster). The library's record keeps its own shape: the property that holds it is named
/// <see cref="Inline"/> (plus a suffix where a record inlines several), and its fields are written in its place, at
/// the level of the command's own (<c>{ "n": …, "status": …, "steps": […], "model": … }</c>, not
/// <c>{ "n": …, "walk": { … } }</c>).
/// </remarks>
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
    /// The JSON name (a prefix: one property may be named <c>$inline</c>, others <c>$inline</c> and a suffix) of a property
    /// whose object's fields are written in its place, among its parent's; a null one writes nothing. A field of the same
    /// name on both levels is a bug, refused (<see cref="ArgumentException"/>).
    /// </summary>
    public const string Inline = "$inline";

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
        var node = JsonSerializer.SerializeToNode(value, type) ?? throw new ArgumentNullException(nameof(value));
        WriteInlined(node);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            node.WriteTo(writer);
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>Replaces, at every level of <paramref name="node"/>, each <see cref="Inline"/> property by its object's fields.</summary>
    private static void WriteInlined(JsonNode? node)
    {
        foreach (var item in node as JsonArray ?? [])
        {
            WriteInlined(item);
        }
        if (node is not JsonObject obj)
        {
            return;
        }
        var fields = obj.ToList();
        obj.Clear();
        foreach (var (name, value) in fields)
        {
            WriteInlined(value);
            if (!name.StartsWith(Inline, StringComparison.Ordinal))
            {
                obj.Add(name, value);
            }
            else if (value is not null)
            {
                var inner = value.AsObject().ToList();
                value.AsObject().Clear();
                foreach (var (innerName, innerValue) in inner)
                {
                    obj.Add(innerName, innerValue);
                }
            }
        }
    }
}
