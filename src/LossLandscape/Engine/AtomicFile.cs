using System.Text;

namespace LossLandscape.Engine;

/// <summary>
/// Writes an output file all at once: the bytes go to a temporary file beside the target, which is flushed to the disk
/// (fsync) and then renamed over the target. A reader sees the old file or the new one, never a half-written one; a run
/// that dies, fills the disk or hits a file-size limit while writing leaves the old file in place and no temporary file.
/// Every file the library and the CLI write goes through here (<c>AtomicWriteTests</c> scans the sources for any other).
/// </summary>
/// <remarks>
/// <para>The temporary file lies in the target's directory because a rename is atomic only within one file system
/// (POSIX rename(2); <see cref="File.Move(string, string, bool)"/> with overwrite uses it on Unix). It is flushed with
/// <see cref="FileStream.Flush(bool)"/>(true), i.e. fsync(2), before the rename, so that after a crash the name holds
/// either the old bytes or all the new ones (the ext4 "rename without fsync" hazard: T. Ts'o, "Delayed allocation and the
/// zero-length file problem", 2009).</para>
/// <para>A target that is a symbolic link is followed: the file it points to is replaced and the link kept, as
/// <c>sed -i --follow-symlinks</c> does. The replaced file's Unix permissions are carried over to the new one.</para>
/// </remarks>
public static class AtomicFile
{
    /// <summary>Links followed from the target before giving up, Linux's limit for one lookup (MAXSYMLINKS = 40).</summary>
    private const int MaxLinks = 40;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>
    /// Writes <paramref name="text"/> (UTF-8, no byte-order mark) to <paramref name="path"/>, creating its
    /// directory if needed. A file that cannot be written is bad input: a <see cref="LandscapeInputException"/> naming it.
    /// </summary>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Write(path, stream => stream.Write(Utf8.GetBytes(text)));
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> (see <see cref="WriteAllText"/>).</summary>
    public static void WriteAllBytes(string path, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        Write(path, stream => stream.Write(bytes));
    }

    /// <summary>
    /// Lets <paramref name="write"/> write the new contents to a stream on a temporary file beside <paramref name="path"/>,
    /// flushes it to the disk, then renames it over <paramref name="path"/>. If <paramref name="write"/> throws, or the
    /// flush or rename fails, the temporary file is removed and the old file is untouched; an I/O failure is a
    /// <see cref="LandscapeInputException"/> naming the path, anything else propagates.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = FollowLinks(Path.GetFullPath(path));
        string directory = Path.GetDirectoryName(full) ?? ".";
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(directory);
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true); // fsync before the rename: the name never points at unwritten blocks
            }
            KeepPermissions(full, temporary);
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

    /// <summary>The file a chain of symbolic links at <paramref name="full"/> ends at (itself when it is no link).</summary>
    private static string FollowLinks(string full)
    {
        for (int i = 0; i < MaxLinks && new FileInfo(full).LinkTarget is { } target; i++)
        {
            full = Path.GetFullPath(target, Path.GetDirectoryName(full) ?? ".");
        }
        return full;
    }

    private static void KeepPermissions(string target, string temporary)
    {
        if (!OperatingSystem.IsWindows() && File.Exists(target))
        {
            File.SetUnixFileMode(temporary, File.GetUnixFileMode(target));
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
