using System.Text;
using System.Text.Json;

namespace LossLandscape.Cli;

/// <summary>Writes a command's machine-readable result (<c>--json FILE</c>).</summary>
public static class JsonOutput
{
    /// <summary>Writes one JSON object built by <paramref name="body"/> to <paramref name="path"/>, if given.</summary>
    public static void Write(string? path, Action<Utf8JsonWriter> body)
    {
        if (path is null)
        {
            return;
        }
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        try
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (dir is not null)
            {
                Directory.CreateDirectory(dir);
            }
            File.WriteAllText(path, Encoding.UTF8.GetString(buffer.ToArray()) + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{path}: cannot write: {e.Message}");
        }
    }
}
