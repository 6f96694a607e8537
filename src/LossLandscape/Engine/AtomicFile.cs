using System.Text;

namespace LossLandscape.Engine;

/// <summary>
/// Writes an output file all at once: the text goes to a temporary file beside the target, which is then
/// renamed over it. A reader sees the old file or the new one, never a half-written one, and a run that
/// dies while writing leaves the old file in place.
/// </summary>
/// <remarks>
/// The temporary file lies in the target's directory because a rename is atomic only within one file
/// system (POSIX rename(2); <see cref="File.Move(string, string, bool)"/> with overwrite uses it on Unix).
/// </remarks>
public static class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="text"/> (UTF-8, no byte-order mark) to <paramref name="path"/>, creating its
    /// directory if needed. A file that cannot be written is bad input: a <see cref="LandscapeInputException"/> naming it.
    /// </summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, temporary => File.WriteAllText(temporary, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)));

    /// <summary>
    /// Lets <paramref name="write"/> write a file at a temporary path beside <paramref name="path"/> (same
    /// extension, for writers that choose the format by it), then renames it over <paramref name="path"/>.
    /// </summary>
    public static void Write(string path, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full) ?? ".";
        string temporary = Path.Combine(directory, $".{Path.GetFileNameWithoutExtension(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp{Path.GetExtension(full)}");
        try
        {
            Directory.CreateDirectory(directory);
            write(temporary);
            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
            throw new LandscapeInputException($"{path}: cannot write: {e.Message.ReplaceLineEndings(" ")}");
        }
        catch
        {
            TryDelete(temporary); // whatever failed, leave no half-written file behind
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nothing more to do: the write already failed, and that is the error the user sees.
        }
    }
}
